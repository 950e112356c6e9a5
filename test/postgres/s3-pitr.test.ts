/**
 * PostgreSQL with everything on object storage: the backup and the WAL archive on a real S3 protocol
 * server (s3rver), compressed and encrypted. archive_command pushes each segment as an encrypted
 * envelope (one PutObject), restore_command reads them back through the same codec, and a restore to
 * a point in time holds exactly the rows committed before it.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebrBin, runEbr, waitFor } from '../helpers/env.js';
import { s3Credentials, startS3Server, type S3Server } from '../s3/s3-server.js';
import { type Cluster, initCluster, postgresIds, postgresTempDir, restoredCluster } from './cluster.js';

const tmp = postgresTempDir('ebr-pg-s3-');
let server: S3Server;
let cluster: Cluster;
let config: string;
const restored: Cluster[] = [];

beforeAll(async () => {
  server = await startS3Server();
  // archive_command and restore_command run in the server's environment: the credentials go there
  // (through pg_ctl, which the cluster helper runs from this process), never on a command line.
  Object.assign(process.env, s3Credentials);
  const keyFile = path.join(tmp.dir, 'backup.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const { uid, gid } = postgresIds();
  chownSync(keyFile, uid, gid); // the postgres OS user runs archive_command: it needs the key
  cluster = await initCluster(tmp.dir);
  config = path.join(tmp.dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${path.join(tmp.dir, 'var', 'catalog.db')}`,
      'instances:',
      '  pg:',
      '    adapter: postgres',
      `    postgres: { host: ${cluster.socketDir}, port: ${cluster.port}, user: postgres, database: postgres, archiveWaitMs: 60000 }`,
      `    snapshot: { provider: copy, staging: ${path.join(tmp.dir, 'staging')} }`,
      `    target: { type: s3, bucket: ${server.bucket}, endpoint: "${server.endpoint}", forcePathStyle: true, prefix: pg-prod/ }`,
      '    compression: { type: zstd }',
      `    encryption: { keyFile: ${keyFile} }`,
      '',
    ].join('\n'),
  );
  chownSync(path.dirname(config), uid, gid);
  const archiveCommand = `${process.execPath} ${ebrBin} --config ${config} wal push --instance pg %p`;
  cluster.conf({ archive_mode: 'on', archive_command: `'${archiveCommand}'` });
  await cluster.mustStart();
  await cluster.query('CREATE TABLE marks (label text primary key, at timestamptz not null default clock_timestamp())');
  await cluster.query("INSERT INTO marks (label) SELECT 'seed ' || g FROM generate_series(1, 2000) g");
}, 180_000);

afterAll(async () => {
  for (const c of restored) await c.stop('immediate').catch(() => undefined);
  await cluster?.stop('immediate').catch(() => undefined);
  await server?.stop();
  tmp.cleanup();
});

const ebr = (args: string[]) => runEbr(['--config', config, ...args]);

/** Forces the current segment out and waits until the archiver has pushed it. */
async function archiveCurrentWal(): Promise<string> {
  const [r] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  await waitFor(
    `WAL segment ${r!.f} archived`,
    async () => {
      const [s] = await cluster.query<{ last: string | null; failed: string | null }>('SELECT last_archived_wal AS last, last_failed_wal AS failed FROM pg_stat_archiver');
      return s?.last !== null && s!.last! >= r!.f ? true : undefined;
    },
    60_000,
    200,
  );
  return r!.f;
}

describe('PostgreSQL on an s3 target, compressed and encrypted', { timeout: 300_000 }, () => {
  it('WAL segments are stored as encrypted envelopes on the object store, and the backup verifies', async () => {
    const b = await ebr(['--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const segment = await archiveCurrentWal();
    const client = new S3Client({ endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: s3Credentials.AWS_ACCESS_KEY_ID, secretAccessKey: s3Credentials.AWS_SECRET_ACCESS_KEY } });
    const got = await client.send(new GetObjectCommand({ Bucket: server.bucket, Key: `pg-prod/pg/wal/${segment}` }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    expect(body.subarray(0, 8).toString()).toBe('EBRLOG1\n');
    expect(body.includes(Buffer.from('seed 1999'))).toBe(false);
    client.destroy();
    const v = await ebr(['verify', 'latest']);
    expect(v.code, v.stderr + v.stdout).toBe(0);
  });

  it('restores to a point in time through the encrypted WAL on the object store', async () => {
    await cluster.query("INSERT INTO marks (label) VALUES ('before')");
    await new Promise((r) => setTimeout(r, 1100));
    const [{ t }] = (await cluster.query<{ t: string }>('SELECT now()::text AS t')) as [{ t: string }];
    await new Promise((r) => setTimeout(r, 1100));
    await cluster.query("INSERT INTO marks (label) VALUES ('after')");
    await archiveCurrentWal();
    const dir = path.join(tmp.dir, 'restore-pitr');
    const r = await ebr(['restore', '--to', dir, '--until', t]);
    expect(r.code, r.stderr).toBe(0);
    const copy = await restoredCluster(dir, tmp.dir);
    restored.push(copy);
    await copy.mustStart();
    await copy.waitPromoted();
    const rows = await copy.query<{ label: string }>("SELECT label FROM marks WHERE label IN ('before', 'after') ORDER BY label");
    expect(rows.map((x) => x.label)).toEqual(['before']);
    const [{ n }] = (await copy.query<{ n: number }>("SELECT count(*)::int AS n FROM marks WHERE label LIKE 'seed %'")) as [{ n: number }];
    expect(n).toBe(2000);
    await copy.stop();
  });
});
