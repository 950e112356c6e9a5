/**
 * Benchmark (not a test): what an `ebr backup` costs the running database — pgbench's tps and p99
 * latency while ebr streams, for each I/O policy (docs/io-policy.md), against pgbench alone.
 *
 *   npx tsc -p . && node dist/bench/pgbench-impact.js [--scale 20] [--clients 4] [--baseline-s 20]
 *       [--limits 40,20] [--fsync off|on]
 *
 * Needs root (a loop device, dropping the page cache), btrfs-progs, PostgreSQL 15 (postgresql,
 * postgresql-contrib) and util-linux's ionice.
 *
 * It makes a loop-device btrfs with a PostgreSQL cluster on a subvolume (the same set-up as
 * bench/backup-vs-pgbackrest.ts, through the same helpers: archive_command = ebr's `wal push`), fills it
 * with `pgbench -i -s SCALE`, and measures:
 *   - the unthrottled backup (ioPriority normal, no ioLimitMBps) on an idle cluster;
 *   - pgbench -c CLIENTS -j CLIENTS alone: tps and p99 latency over --baseline-s seconds after a 3 s
 *     warm-up;
 *   - for each policy, pgbench started, after the same warm-up `ebr backup --json` started, and tps and
 *     p99 of the transactions that ended while the backup ran (from pgbench's per-transaction log), with
 *     the backup's time and how often its rate limit held reads back.
 * Before every round: the archiver idle, `btrfs subvolume sync`, `sync` and the page cache dropped, so
 * ebr reads from the disk every time and pgbench starts cold every time, baseline included.
 * The goal (issue 14): the default policy keeps ≥ 85 % of the baseline tps, at ≤ 1.5 × the time of the
 * unthrottled backup under the same load. Ratios are from one run on a shared, noisy machine.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asPostgres, initCluster, mkdirForPostgres, pgBin, postgresIds, writeEbrConfig, type Cluster } from '../test/postgres/cluster.js';
import { makeLoopFs, requireTools, sh, type LoopFs } from '../test/snapshot/loopfs.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const scale = Number(opt('scale', '20'));
const clients = Number(opt('clients', '4'));
const baselineS = Number(opt('baseline-s', '20'));
const fsyncOn = opt('fsync', 'off') === 'on';
const limitsArg = opt('limits', '');
const warmupS = 3;
const ebrMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const instance = 'pg';

interface Policy {
  name: string;
  lines: string[];
}

interface Window {
  tps: number;
  p99ms: number;
  n: number;
}

let fs: LoopFs | undefined;
let cluster: Cluster | undefined;

async function cleanup(): Promise<void> {
  if (cluster) await cluster.stop('immediate').catch((err: unknown) => process.stderr.write(`pg_ctl stop failed: ${(err as Error).message}\n`));
  cluster = undefined;
  fs?.teardown();
  fs = undefined;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

function runEbrBackup(config: string): Promise<{ ms: number; startMs: number; endMs: number; doc: { backupId: string; bytes: number; location: string; phases: Record<string, number>; io: { waits: number; waitedMs: number; threads: number; priority: string; limitMBps?: number } } }> {
  return new Promise((resolve, reject) => {
    const startMs = Date.now();
    const t0 = performance.now();
    const child = spawn(process.execPath, [ebrMain, '--config', config, '--json', 'backup'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`ebr backup failed (${code}): ${err || out}`));
      resolve({ ms, startMs, endMs: Date.now(), doc: JSON.parse(out) });
    });
  });
}

/** Transactions in pgbench's per-transaction logs (prefix.*) that ended in [fromMs, toMs]: tps and p99 latency. */
function windowOf(prefix: string, fromMs: number, toMs: number): Window {
  const dir = path.dirname(prefix);
  const lat: number[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith(`${path.basename(prefix)}.`))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      // client_id transaction_no latency_us script_no epoch_s epoch_us
      const p = line.trim().split(/\s+/);
      if (p.length < 6) continue;
      const end = Number(p[4]) * 1000 + Number(p[5]) / 1000;
      if (end >= fromMs && end <= toMs) lat.push(Number(p[2]) / 1000);
    }
    rmSync(path.join(dir, f));
  }
  lat.sort((a, b) => a - b);
  return { tps: lat.length / ((toMs - fromMs) / 1000), p99ms: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))] ?? NaN, n: lat.length };
}

async function main(): Promise<void> {
  requireTools('btrfs', 'mkfs.btrfs', 'losetup', 'mount', 'umount', 'ionice');
  if (!existsSync(ebrMain)) throw new Error(`${ebrMain} is missing: build first (npx tsc -p .)`);
  postgresIds();
  const estimateMiB = Math.ceil(scale * 15.5);
  fs = makeLoopFs('btrfs', Math.max(4096, estimateMiB * 8 + 4096));
  chmodSync(path.dirname(fs.mountPoint), 0o755);
  const mnt = fs.mountPoint;
  const pgRoot = path.join(mnt, 'pg');
  sh('btrfs', ['subvolume', 'create', pgRoot]);
  const { uid, gid } = postgresIds();
  sh('chown', [`${uid}:${gid}`, pgRoot]);
  const ebrDir = mkdirForPostgres(path.join(mnt, 'ebr'));
  const logDir = mkdirForPostgres(path.join(mnt, 'pgbench-logs'));

  cluster = await initCluster(pgRoot);
  const c = cluster;
  let setup = writeEbrConfig(ebrDir, c, { instance, provider: 'btrfs', instanceLines: ['ioPriority: normal'] });
  const archiveCommand = `${process.execPath} ${ebrMain} --config ${setup.config} wal push --instance ${instance} %p`;
  c.conf({ archive_mode: 'on', archive_command: `'${archiveCommand}'`, ...(fsyncOn ? { fsync: 'on' } : {}) });
  await c.mustStart();
  process.stderr.write(`pgbench -i -s ${scale} …\n`);
  const init = await c.pgbench(['-i', '-s', String(scale), '-q', 'postgres'], 60_000 + scale * 20_000);
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  await c.query('CHECKPOINT');

  const settle = async () => {
    await archiverIdle(c);
    sh('btrfs', ['subvolume', 'sync', mnt]);
    sh('sync', []);
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  };
  const pgbench = (name: string, seconds: number) =>
    asPostgres(path.join(pgBin(), 'pgbench'), ['-h', c.socketDir, '-p', String(c.port), '-U', 'postgres', '-c', String(clients), '-j', String(clients), '-T', String(seconds), '--log', `--log-prefix=${path.join(logDir, name)}`, 'postgres'], { cwd: logDir, timeoutMs: (seconds + 120) * 1000 }).then((r) => {
      if (r.code !== 0) throw new Error(`pgbench failed: ${r.stderr}`);
      return r;
    });
  const forget = (location: string) => rmSync(location, { recursive: true, force: true });

  // The unthrottled backup with nothing else running: the rate the limits are set against.
  await settle();
  const idle = await runEbrBackup(setup.config);
  forget(idle.doc.location);
  const idleMBps = idle.doc.bytes / 1e6 / (idle.ms / 1000);
  process.stderr.write(`unthrottled backup, idle cluster: ${idle.ms.toFixed(0)} ms, ${(idle.doc.bytes / 1e6).toFixed(0)} MB, ${idleMBps.toFixed(0)} MB/s\n`);
  const limits = limitsArg ? limitsArg.split(',').map(Number) : [Math.round(idleMBps * 0.67), Math.round(idleMBps * 0.4)];

  const policies: Policy[] = [
    { name: 'none (normal priority, no limit)', lines: ['ioPriority: normal'] },
    { name: 'ionice best-effort 7', lines: ['ioPriority: best-effort'] },
    { name: 'ionice idle (the default)', lines: [] },
    ...limits.flatMap((l) => [{ name: `ioLimitMBps ${l}, normal priority`, lines: ['ioPriority: normal', `ioLimitMBps: ${l}`] }]),
    { name: `ioLimitMBps ${limits[0]} + ionice idle`, lines: [`ioLimitMBps: ${limits[0]}`] },
  ];

  // pgbench alone.
  await settle();
  const t0 = Date.now();
  await pgbench('baseline', warmupS + baselineS);
  const baseline = windowOf(path.join(logDir, 'baseline'), t0 + warmupS * 1000, t0 + (warmupS + baselineS) * 1000);
  process.stderr.write(`baseline: ${baseline.tps.toFixed(0)} tps, p99 ${baseline.p99ms.toFixed(1)} ms\n`);

  const rows: Array<{ policy: Policy; w: Window; ms: number; waits: number; threads: number }> = [];
  for (const [i, policy] of policies.entries()) {
    setup = writeEbrConfig(ebrDir, c, { instance, provider: 'btrfs', instanceLines: policy.lines });
    await settle();
    const limit = Number(policy.lines.find((l) => l.startsWith('ioLimitMBps'))?.split(':')[1] ?? 0);
    const expectS = Math.max(idle.ms / 1000, limit ? idle.doc.bytes / 1e6 / limit : 0);
    const name = `p${i}`;
    const bench = pgbench(name, Math.ceil(warmupS + expectS * 3 + 10));
    await new Promise((r) => setTimeout(r, warmupS * 1000));
    const b = await runEbrBackup(setup.config);
    await bench;
    const w = windowOf(path.join(logDir, name), b.startMs, b.endMs);
    forget(b.doc.location);
    rows.push({ policy, w, ms: b.ms, waits: b.doc.io.waits, threads: b.doc.io.threads });
    process.stderr.write(`${policy.name}: ${w.tps.toFixed(0)} tps, p99 ${w.p99ms.toFixed(1)} ms, backup ${b.ms.toFixed(0)} ms (limit waits ${b.doc.io.waits}, threads set ${b.doc.io.threads})\n`);
  }

  const sched = (dev: string) => {
    try {
      return readFileSync(`/sys/block/${dev}/queue/scheduler`, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  const backing = sh('findmnt', ['-n', '-o', 'SOURCE', '--target', path.dirname(fs.image)], { allowFail: true }).trim();
  console.log(`\npgbench -c ${clients} -j ${clients}, scale ${scale} (${(idle.doc.bytes / 1e6).toFixed(0)} MB streamed), fsync ${fsyncOn ? 'on' : 'off'}; loop-device btrfs (${path.basename(fs.device)}: ${sched(path.basename(fs.device))}) on ${backing || '?'} (${sched('vda')} for vda); page cache dropped before each round`);
  console.log(`unthrottled backup on the idle cluster: ${idle.ms.toFixed(0)} ms (${idleMBps.toFixed(0)} MB/s)`);
  console.log(`baseline (pgbench alone, ${baselineS} s after ${warmupS} s warm-up): ${baseline.tps.toFixed(0)} tps, p99 ${baseline.p99ms.toFixed(1)} ms\n`);
  const unthrottled = rows[0]!.ms;
  const w = Math.max(...rows.map((r) => r.policy.name.length));
  console.log(['policy'.padEnd(w), 'tps'.padStart(6), '% base'.padStart(7), 'p99 ms'.padStart(8), 'backup ms'.padStart(10), 'x none'.padStart(7), 'waits'.padStart(6), '  goal'].join(' '));
  for (const r of rows) {
    const share = r.w.tps / baseline.tps;
    const slow = r.ms / unthrottled;
    const met = share >= 0.85 && slow <= 1.5;
    console.log([r.policy.name.padEnd(w), r.w.tps.toFixed(0).padStart(6), `${(share * 100).toFixed(0)} %`.padStart(7), r.w.p99ms.toFixed(1).padStart(8), r.ms.toFixed(0).padStart(10), slow.toFixed(2).padStart(7), String(r.waits).padStart(6), `  ${met ? 'met' : 'not met'}`].join(' '));
  }
  const def = rows.find((r) => r.policy.lines.length === 0)!;
  const ok = def.w.tps / baseline.tps >= 0.85 && def.ms / unthrottled <= 1.5;
  console.log(`\ngoal: the default policy (${def.policy.name}) keeps ≥ 85 % of the baseline tps at ≤ 1.5 × the unthrottled backup's time under the same load: ${((def.w.tps / baseline.tps) * 100).toFixed(0)} %, ${(def.ms / unthrottled).toFixed(2)} × → ${ok ? 'met' : 'NOT met'}`);
}

async function archiverIdle(c: Cluster, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (r?.n === 0) return;
    if (Date.now() > deadline) throw new Error(`the archiver still had ${r?.n} segments to push after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

main()
  .then(cleanup, async (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
    await cleanup();
  })
  .catch((err: unknown) => {
    process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
