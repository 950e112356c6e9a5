/**
 * The s3 target through the ArchiveTarget API against a real S3 protocol server (s3rver in its own
 * process): parallel space streams read back byte for byte, one space read alone, the manifest last,
 * abort and remove leaving nothing (no objects, no open multipart uploads), no overwrite, clear errors,
 * and the Object Lock parameters on every object written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupRef } from '../../src/archive/archive-target.js';
import { manifestText, sha256Of } from '../../src/archive/manifest.js';
import { s3Settings, s3Target } from '../../src/archive/s3/index.js';
import { EbrError } from '../../src/errors.js';
import { freePort } from '../helpers/env.js';
import { expected, fixtureSpaces, pieces, readBack, writeBackup, writeSpaces } from './backup-fixture.js';
import { recordRequests, s3Credentials, startS3Server, type S3Server } from './s3-server.js';

const mib = 1 << 20;
let server: S3Server;

beforeAll(async () => {
  Object.assign(process.env, s3Credentials);
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

const target = (extra: Record<string, unknown> = {}, options = {}) => s3Target(s3Settings.parse(server.settings({ prefix: 'ebr/', partSize: '5MiB', ...extra })), options);
const refOf = (backupId: string): BackupRef => ({ instance: 'shop', backupId });

/** The error a promise rejects with, which must be an EbrError told without a stack. */
async function failure(p: Promise<unknown>): Promise<EbrError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EbrError);
  const e = err as EbrError;
  expect(`${e.message}\n${e.hint ?? ''}`).not.toMatch(/\n\s+at |\.js:\d+/);
  return e;
}

describe('s3 target', { timeout: 120_000 }, () => {
  it('writes spaces in parallel streams and reads every member back with equal digests', async () => {
    const { requests, options } = recordRequests();
    const t = target({}, options);
    const ref = refOf('20250101T000000Z-aa01');
    const { manifest, spaces } = await writeBackup(t, ref);

    expect(await server.keys('ebr/shop/20250101T000000Z-aa01/')).toEqual(
      ['manifest.json', 'meta/backup_label', 'spaces/audit.tar', 'spaces/main.tar', 'spaces/tiny.tar'].map((k) => `ebr/shop/20250101T000000Z-aa01/${k}`),
    );
    // The big space went up as a multipart upload, the small ones as one PutObject each, the manifest after all of them.
    expect(requests.filter((r) => r.command === 'CreateMultipartUploadCommand').map((r) => r.input.Key)).toEqual(['ebr/shop/20250101T000000Z-aa01/spaces/main.tar']);
    expect(requests.filter((r) => r.command === 'UploadPartCommand').length).toBe(3);
    const puts = requests.filter((r) => r.command === 'PutObjectCommand' || r.command === 'CompleteMultipartUploadCommand').map((r) => String(r.input.Key).split('/').slice(3).join('/'));
    expect(puts.at(-1)).toBe('manifest.json');
    expect(puts.slice(0, -2).sort()).toEqual(['spaces/audit.tar', 'spaces/main.tar', 'spaces/tiny.tar']);
    // The streams ran side by side: the small spaces were stored while the big one's parts were going up.
    const order = requests.map((r) => `${r.command}:${String(r.input.Key ?? '').split('/').pop()}`);
    expect(order.indexOf('PutObjectCommand:audit.tar')).toBeLessThan(order.indexOf('CompleteMultipartUploadCommand:main.tar'));

    const reader = await t.open(ref);
    const file = await reader.readManifestFile();
    expect(file.sha256).toBe(sha256Of(manifestText(manifest)));
    expect(file.manifest.members.length).toBe(manifest.members.length);
    expect((await reader.readMeta('backup_label')).toString()).toContain('START WAL LOCATION');
    for (const [space, members] of Object.entries(spaces)) expect(await readBack(t, ref, space, manifest)).toEqual(expected(members));

    const listed = await t.list!('shop');
    expect(listed.map((a) => [a.backupId, a.location])).toEqual([['20250101T000000Z-aa01', `s3://${server.bucket}/ebr/shop/20250101T000000Z-aa01`]]);
    expect((await listed[0]!.manifestBytes())!.toString()).toBe(manifestText(manifest));
    expect(t.locationOf!(ref)).toBe(`s3://${server.bucket}/ebr/shop/20250101T000000Z-aa01`);
    await t.remove(ref);
  });

  it('reads one space without fetching the others', async () => {
    const t = target();
    const ref = refOf('20250101T000000Z-aa02');
    const { manifest, spaces } = await writeBackup(t, ref);
    const { requests, options } = recordRequests();
    const reading = target({}, options);
    expect(await readBack(reading, ref, 'audit', manifest)).toEqual(expected(spaces.audit!));
    const fetched = requests.filter((r) => r.command === 'GetObjectCommand').map((r) => r.input.Key);
    expect(fetched).toEqual(['ebr/shop/20250101T000000Z-aa02/spaces/audit.tar']);
    await t.remove(ref);
  });

  it('writes the manifest last: without it the archive is listed as incomplete and cannot be opened as a backup', async () => {
    const t = target();
    const ref = refOf('20250101T000000Z-aa03');
    const writer = await t.create(ref);
    await writeSpaces(writer, ref, fixtureSpaces());
    await writer.writeMeta('backup_label', 'x');
    // Stopped here, before writeManifest.
    const listed = (await t.list!('shop')).find((a) => a.backupId === ref.backupId);
    expect(listed).toBeDefined();
    expect(await listed!.manifestBytes()).toBeUndefined();
    const e = await failure((await t.open(ref)).readManifest());
    expect(e.message).toMatch(/no manifest at s3:\/\/.*manifest\.json: the archive is missing or incomplete/);
    await t.remove(ref);
    expect(await server.keys('ebr/shop/20250101T000000Z-aa03/')).toEqual([]);
    expect((await t.list!('shop')).find((a) => a.backupId === ref.backupId)).toBeUndefined();
  });

  it('abort() mid-stream leaves no object and no open multipart upload', async () => {
    const t = target();
    const ref = refOf('20250101T000000Z-aa04');
    const writer = await t.create(ref);
    await writer.writeMeta('backup_label', 'x');
    const small = await writer.openSpace('small');
    await small.addFile({ name: 'f', type: 'file', size: 10 }, pieces(Buffer.alloc(10, 1)), new AbortController().signal);
    await small.close();
    const big = await writer.openSpace('big');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    async function* halfThenWait(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 12; i++) yield Buffer.alloc(mib, i);
      await held;
      for (let i = 12; i < 40; i++) yield Buffer.alloc(mib, i);
    }
    const adding = big.addFile({ name: 'big.bin', type: 'file', size: 40 * mib }, halfThenWait(), new AbortController().signal);
    adding.catch(() => undefined);
    // A multipart upload is open with parts in it, and the small space is an object already.
    await waitUntil(() => server.openUploads().includes('ebr/shop/20250101T000000Z-aa04/spaces/big.tar'));
    await waitUntil(() => writer.bytesWritten!() >= 5 * mib);
    expect(await server.keys('ebr/shop/20250101T000000Z-aa04/')).toEqual(['ebr/shop/20250101T000000Z-aa04/meta/backup_label', 'ebr/shop/20250101T000000Z-aa04/spaces/small.tar']);
    await writer.abort();
    release();
    await expect(adding).rejects.toThrow();
    expect(await server.keys('ebr/shop/20250101T000000Z-aa04/')).toEqual([]);
    expect(server.openUploads()).toEqual([]);
  });

  it('remove() deletes every object of the backup and nothing beside it; a missing backup is no error', async () => {
    const t = target();
    const a = refOf('20250101T000000Z-aa05');
    const b = refOf('20250101T000000Z-aa06');
    await writeBackup(t, a);
    await writeBackup(t, b, { tiny: fixtureSpaces().tiny! });
    await t.remove(a);
    expect(await server.keys('ebr/shop/20250101T000000Z-aa05')).toEqual([]);
    expect((await server.keys('ebr/shop/20250101T000000Z-aa06/')).length).toBe(3);
    await t.remove(a);
    await t.remove(refOf('20250101T000000Z-ffff'));
    await t.remove(b);
    expect(await server.keys('ebr/shop/')).toEqual([]);
    expect(server.openUploads()).toEqual([]);
  });

  it('refuses to create a backup whose prefix holds anything', async () => {
    const t = target();
    const ref = refOf('20250101T000000Z-aa07');
    await writeBackup(t, ref, { tiny: fixtureSpaces().tiny! });
    const e = await failure(t.create(ref));
    expect(e.message).toBe(`an archive already exists at s3://${server.bucket}/ebr/shop/20250101T000000Z-aa07; ebr never overwrites a backup`);
    // Even a lone meta file left by someone else counts.
    const other = refOf('20250101T000000Z-aa08');
    const w = await t.create(other);
    await w.writeMeta('stray', 'x');
    await failure(t.create(other));
    await t.remove(ref);
    await t.remove(other);
  });

  it('names a missing bucket, a wrong endpoint and missing credentials, with hints and no stack', async () => {
    const ref = refOf('20250101T000000Z-aa09');
    const noBucket = await failure(target({ bucket: 'no-such-bucket' }).create(ref));
    expect(noBucket.code).toBe('archive');
    expect(noBucket.message).toMatch(/the bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+/);
    expect(noBucket.hint).toMatch(/create the bucket no-such-bucket, or fix target\.bucket/);

    const port = await freePort();
    const wrong = await failure(target({ endpoint: `http://127.0.0.1:${port}` }).create(ref));
    expect(wrong.message).toMatch(new RegExp(`the S3 endpoint http://127\\.0\\.0\\.1:${port} cannot be reached \\(ECONNREFUSED`));
    expect(wrong.hint).toMatch(/check target\.endpoint/);
    // Asked before the window too (freeSpace), so a backup fails before anything is blocked.
    await failure(target({ endpoint: `http://127.0.0.1:${port}` }).freeSpace!(ref));

    const saved = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      Object.assign(process.env, { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config', AWS_EC2_METADATA_DISABLED: 'true' });
      const none = await failure(target().create(ref));
      expect(none.message).toMatch(/no S3 credentials were found/);
      expect(none.hint).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    } finally {
      process.env = saved;
    }

    // s3rver does not check V4 signatures, so a wrong secret goes unnoticed; an unknown key id is refused.
    process.env.AWS_ACCESS_KEY_ID = 'NOSUCHKEY';
    try {
      const refused = await failure(target().create(ref));
      expect(refused.message).toMatch(/refused the credentials \(InvalidAccessKeyId\)/);
      expect(refused.hint).toMatch(/check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = s3Credentials.AWS_ACCESS_KEY_ID;
    }
  });

  it('sends the Object Lock mode and retain-until date with every object it writes', async () => {
    const { requests, options } = recordRequests();
    const t = target({ objectLock: { mode: 'COMPLIANCE', days: 3 } }, options);
    const ref = refOf('20250101T000000Z-aa10');
    const before = Date.now();
    await writeBackup(t, ref, { main: fixtureSpaces().main!, tiny: fixtureSpaces().tiny! });
    const creating = requests.filter((r) => r.command === 'PutObjectCommand' || r.command === 'CreateMultipartUploadCommand');
    expect(creating.map((r) => String(r.input.Key).split('/').slice(3).join('/')).sort()).toEqual(['manifest.json', 'meta/backup_label', 'spaces/main.tar', 'spaces/tiny.tar']);
    for (const r of creating) {
      expect(r.input.ObjectLockMode).toBe('COMPLIANCE');
      const until = (r.input.ObjectLockRetainUntilDate as Date).getTime();
      expect(until).toBeGreaterThanOrEqual(before + 3 * 86_400_000);
      expect(until).toBeLessThan(Date.now() + 3 * 86_400_000);
      // And they went out as the headers S3 reads.
      expect(r.headers?.['x-amz-object-lock-mode']).toBe('COMPLIANCE');
      expect(r.headers?.['x-amz-object-lock-retain-until-date']).toBe(new Date(until).toISOString());
    }
    await t.remove(ref);
  });

  it('under Object Lock, remove() deletes what the lock allows and names what it kept and until when', async () => {
    // s3rver has no Object Lock: the bucket's refusal is played by a middleware that answers for the locked manifest.
    const until = new Date(Date.now() + 5 * 86_400_000);
    const t = target({}, { onClient: lockManifests(until) });
    const ref = refOf('20250101T000000Z-aa11');
    await writeBackup(t, ref, { tiny: fixtureSpaces().tiny! });
    const e = await failure(t.remove(ref));
    expect(e.message).toBe(`s3://${server.bucket}/ebr/shop/20250101T000000Z-aa11/ was removed except 1 object the bucket refused to delete: manifest.json (GOVERNANCE until ${until.toISOString()})`);
    expect(e.hint).toMatch(new RegExp(`Object Lock keeps them until ${until.toISOString().replace(/\./g, '\\.')}`));
    expect(await server.keys('ebr/shop/20250101T000000Z-aa11/')).toEqual(['ebr/shop/20250101T000000Z-aa11/manifest.json']);
    await target().remove(ref);
  });

  it('takes only its own keys, sizes like 16MiB, and no credentials', () => {
    const base = { type: 's3', bucket: 'b-1' };
    expect(s3Settings.parse(base)).toMatchObject({ prefix: '', region: 'us-east-1', partSize: 16 * mib, queueSize: 4 });
    expect(s3Settings.parse({ ...base, partSize: '8 MiB' }).partSize).toBe(8 * mib);
    expect(s3Settings.parse({ ...base, partSize: 6 * mib }).partSize).toBe(6 * mib);
    expect(() => s3Settings.parse({ ...base, partSize: '4MiB' })).toThrow(/at least 5 MiB/);
    expect(() => s3Settings.parse({ ...base, partSize: 'big' })).toThrow(/KiB, MiB, GiB or TiB/);
    expect(() => s3Settings.parse({ ...base, secretAccessKey: 'x' })).toThrow(/Unrecognized key/);
    expect(() => s3Settings.parse({ ...base, objectLock: { mode: 'STRICT', days: 1 } })).toThrow();
    expect(() => s3Settings.parse({ type: 's3' })).toThrow(/bucket/);
    // A prefix without its slash gets one: keys never run into the instance name.
    expect(s3Target(s3Settings.parse({ ...base, prefix: 'backups' })).locationOf!(refOf('x1'))).toBe('s3://b-1/backups/shop/x1');
  });
});

/** A middleware playing a bucket whose manifest.json objects are under GOVERNANCE retention until `until`. */
function lockManifests(until: Date) {
  return (client: import('@aws-sdk/client-s3').S3Client) => {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string; Delete?: { Objects?: Array<{ Key: string }> } };
        if (context.commandName === 'DeleteObjectsCommand' && input.Delete?.Objects) {
          const locked = input.Delete.Objects.filter((o) => o.Key?.endsWith('/manifest.json'));
          const rest = input.Delete.Objects.filter((o) => !o.Key?.endsWith('/manifest.json'));
          const out = rest.length ? await next({ ...args, input: { ...input, Delete: { ...input.Delete, Objects: rest } } as typeof args.input }) : { output: { $metadata: {} }, response: {} };
          const output = out.output as { Errors?: unknown[] };
          output.Errors = [...(output.Errors ?? []), ...locked.map((o) => ({ Key: o.Key, Code: 'AccessDenied', Message: 'Access Denied because object protected by object lock.' }))];
          return out;
        }
        const out = await next(args);
        if (context.commandName === 'HeadObjectCommand' && input.Key?.endsWith('/manifest.json')) Object.assign(out.output as object, { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until });
        return out;
      },
      { step: 'initialize', name: 'playObjectLock' },
    );
  };
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
