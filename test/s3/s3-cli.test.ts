/**
 * End to end through the built CLI: an SQLite instance with `target: { type: s3, … }` on s3rver, the
 * credentials in the environment only. Backup, verify, restore --to, a partial restore in place; a
 * backup without credentials fails before the window with a hint; a backup killed mid-upload is
 * cleaned up by the next command (no object, no open multipart upload).
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { integrity, makeInstance, query, type TestInstance } from '../sqlite/sqlite-instance.js';
import { s3Credentials, startS3Server, type S3Server } from './s3-server.js';
import type { ChildProcess } from 'node:child_process';

const t = tempDir('ebr-s3-cli-');
let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
  t.cleanup();
});
const spawned: ChildProcess[] = [];
afterEach(() => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** No credentials anywhere the SDK's default chain looks, unless the test gives them. */
const noCredentials = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '', AWS_PROFILE: '', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_CONFIG_FILE: '/nonexistent/config', AWS_EC2_METADATA_DISABLED: 'true' };
const withCredentials = { ...noCredentials, ...s3Credentials };

function s3Instance(name: string, padMiB: number, targetExtra = ''): TestInstance {
  const inst = makeInstance(path.join(t.dir, name), { padMiB });
  writeFileSync(
    inst.config,
    [
      'catalog: ./var/catalog.db',
      'instances:',
      '  t:',
      '    adapter: sqlite',
      '    sqlite: { main: ./main.db, attach: { side: ./side.db, notes: ./notes.db }, busyTimeoutMs: 10000 }',
      '    snapshot: { provider: copy, staging: ./var/staging }',
      `    target: { type: s3, bucket: ${server.bucket}, endpoint: "${server.endpoint}", forcePathStyle: true, prefix: ${name}/, partSize: 5MiB${targetExtra} }`,
      '    parallelStreams: 2',
      '',
    ].join('\n'),
  );
  return inst;
}

const ebr = (inst: TestInstance, args: string[], env: NodeJS.ProcessEnv = withCredentials) => runEbr(['--config', inst.config, ...args], { env });

describe('ebr on an s3 target', { timeout: 300_000 }, () => {
  it('backs up, verifies, restores --to a directory and one space in place', async () => {
    const inst = s3Instance('e2e', 12);
    const b = await ebr(inst, ['--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const { backupId, location } = JSON.parse(b.stdout) as { backupId: string; location: string };
    expect(location).toBe(`s3://${server.bucket}/e2e/t/${backupId}`);
    const keys = await server.keys(`e2e/t/${backupId}/`);
    expect(keys.map((k) => k.slice(`e2e/t/${backupId}/`.length)).filter((k) => !k.startsWith('meta/'))).toEqual(['manifest.json', 'spaces/main.tar', 'spaces/notes.tar', 'spaces/side.tar']);
    expect(server.openUploads()).toEqual([]);
    // The credentials reached neither the catalog nor the output.
    expect(readFileSync(path.join(inst.dir, 'var/catalog.db')).includes(s3Credentials.AWS_SECRET_ACCESS_KEY)).toBe(false);
    expect(b.stdout + b.stderr).not.toContain(s3Credentials.AWS_SECRET_ACCESS_KEY);

    const v = await ebr(inst, ['verify', 'latest']);
    expect(v.code, v.stderr + v.stdout).toBe(0);

    const into = path.join(inst.dir, 'restored');
    const r = await ebr(inst, ['restore', '--to', into]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of [inst.main, inst.side, inst.notes]) expect(sha(path.join(into, path.basename(f))), f).toBe(sha(f));
    expect(integrity(path.join(into, 'main.db'))).toBe('ok');

    // After the backup notes loses rows and main changes; --partial notes puts back notes alone.
    query(inst.notes, 'DELETE FROM note WHERE id <= 100 RETURNING id');
    query(inst.main, 'INSERT INTO ledger (seq, at) VALUES (1, 1) RETURNING seq');
    const mainSha = sha(inst.main);
    const p = await ebr(inst, ['restore', '--partial', 'notes']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/restored space notes/);
    expect(query<{ n: number }>(inst.notes, 'SELECT count(*) AS n FROM note').n).toBe(500);
    expect(integrity(inst.notes)).toBe('ok');
    expect(sha(inst.main)).toBe(mainSha);

    const list = await ebr(inst, ['--json', 'list']);
    expect((JSON.parse(list.stdout) as Array<{ id: string; status: string }>).map((x) => [x.id, x.status])).toEqual([[backupId, 'complete']]);
  });

  it('without credentials, fails before the window and says which variables to set', async () => {
    const inst = s3Instance('nocreds', 0);
    const b = await ebr(inst, ['backup'], noCredentials);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/no S3 credentials were found/);
    expect(b.stderr).toMatch(/hint: .*AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    expect(b.stderr).not.toMatch(/\n\s+at /);
    const list = await ebr(inst, ['--json', 'list']);
    const [failed] = JSON.parse(list.stdout) as Array<{ id: string; status: string; phase: string }>;
    expect(failed).toMatchObject({ status: 'failed', phase: 'check-target' });
    const show = await ebr(inst, ['--json', 'show', failed!.id]);
    // Refused before the window: nothing was blocked.
    expect((JSON.parse(show.stdout) as { blockWindowMs: number | null }).blockWindowMs).toBeNull();
    expect(await server.keys('nocreds/')).toEqual([]);
  });

  it('refuses credentials and unknown keys in target:', async () => {
    const inst = s3Instance('keys', 0, ', secretAccessKey: x');
    const r = await ebr(inst, ['list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown key instances\.t\.target\.secretAccessKey; a s3 target takes: type, bucket, prefix, endpoint, region, forcePathStyle, objectLock, partSize, queueSize/);
  });

  it('a backup killed mid-upload leaves nothing once the next command repaired it', async () => {
    const inst = s3Instance('killed', 64);
    const p = spawnEbr(['--config', inst.config, 'backup'], { env: withCredentials });
    spawned.push(p);
    const exited = new Promise<void>((r) => p.on('exit', () => r()));
    // A multipart upload is open: main.db's parts are going up.
    await waitFor('the backup to open a multipart upload', () => server.openUploads().some((k) => k.startsWith('killed/t/') && k.endsWith('/spaces/main.tar')) || undefined, 120_000, 10);
    p.kill('SIGKILL');
    await exited;
    const [open] = server.openUploads();
    const backupId = open!.split('/')[2]!;

    const first = await ebr(inst, ['list']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`removed leftover partial archive s3://${server.bucket}/killed/t/${backupId} (backup ${backupId})`);
    expect(server.openUploads()).toEqual([]);
    expect(await server.keys('killed/')).toEqual([]);
    const again = await ebr(inst, ['backup']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/removed leftover/);
  });
});
