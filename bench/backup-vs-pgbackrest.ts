/**
 * Benchmark (not a test): times `ebr backup` against pgBackRest and GNU tar on the same PostgreSQL
 * cluster, in the same run.
 *
 *   npm run bench:pgbackrest -- [--scale 50] [--runs 3] [--compress none|zstd|lz4|gzip]
 *
 * Needs root (a loop device, dropping the page cache), btrfs-progs, PostgreSQL 15 (postgresql,
 * postgresql-contrib) and pgBackRest (apt-get install -y pgbackrest).
 *
 * It makes a loop-device btrfs, a subvolume on it with a PostgreSQL cluster (archive_command = ebr's
 * `wal push`) filled by `pgbench -i -s SCALE` (scale 50 ≈ 750 MB), and its own pgBackRest stanza with
 * the repository on the same btrfs (no compression, start-fast, archive-check=n: pgBackRest does not
 * own the cluster's WAL archive here, ebr does). Then, `--runs` times, in an order that rotates each
 * round, with `btrfs subvolume sync`, `sync` and the page cache dropped before each:
 *   - GNU `tar -cf` of the data directory to a file on the same btrfs, then `sync` (ebr fsyncs its
 *     archive; pgBackRest fsyncs its repository). pg_wal's contents are left out, as ebr and pgBackRest
 *     leave them out;
 *   - `pgbackrest backup --type=full` with process-max 1 and 2;
 *   - `ebr backup` with the btrfs snapshot provider and a tar target on the same btrfs (sha256 of every
 *     byte included): the whole command, and its stream phase from `--json`'s `phases.stream`.
 * It prints medians, MB/s (bytes of the data directory without pg_wal / wall time, the same for every
 * method, so MB/s compare like times), the ratios to tar and to pgBackRest process-max 2, ebr's block
 * window, and whether the goals of a full backup are met: at most 1.05 × tar's time and at most
 * 0.7 × pgBackRest's (process-max 2). Everything it made is removed at the end, on failure and on
 * SIGINT/SIGTERM too. Compare ratios measured in one run, never absolute times across runs: the
 * machines are shared and noisy.
 *
 * With --compress, every method compresses the same way at its tool's default level: GNU tar pipes
 * into `zstd -3` / `lz4 -1` / `gzip -6`, pgBackRest runs with compress-type zst/lz4/gz at those levels,
 * and ebr with `compression: { type, level }` at the same level (lz4: ebr's one level, the lz4 tool's
 * default); the sizes written are printed too.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCluster, mkdirForPostgres, postgresIds, writeEbrConfig, type Cluster } from '../test/postgres/cluster.js';
import { makeLoopFs, requireTools, sh, type LoopFs } from '../test/snapshot/loopfs.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const scale = Number(opt('scale', '50'));
const runs = Number(opt('runs', '3'));
const compress = opt('compress', 'none');
/** Each tool's compressor at one level, the same for all three. */
const compressors: Record<string, { level: number; pipe: string; pgbackrest: string }> = {
  none: { level: 0, pipe: '', pgbackrest: 'none' },
  zstd: { level: 3, pipe: 'zstd -q -3 -T1', pgbackrest: 'zst' },
  lz4: { level: 1, pipe: 'lz4 -q -1', pgbackrest: 'lz4' },
  gzip: { level: 6, pipe: 'gzip -6', pgbackrest: 'gz' },
};
const compressor = compressors[compress];
if (!compressor) throw new Error(`--compress must be one of ${Object.keys(compressors).join(', ')}, not ${compress}`);
if (!Number.isInteger(scale) || scale < 1) throw new Error(`--scale must be a positive integer, not ${opt('scale', '')}`);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, not ${opt('runs', '')}`);
// The built CLI; archive_command points at it too (the test helper's own path is right only under vitest).
const ebrMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');
const stanza = 'bench';
const instance = 'pg';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Commands in flight, each the leader of its own process group, with a promise of its end. */
const children = new Map<number, Promise<void>>();

/** Runs a command (as the postgres OS user when asked), timing it; rejects unless the exit code is in okCodes. */
function run(cmd: string, argv: string[], options: { postgres?: boolean; okCodes?: number[] } = {}): Promise<Ran> {
  const [file, full] = options.postgres ? ['runuser', ['-u', 'postgres', '--', cmd, ...argv]] : [cmd, argv];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Its own process group, so cleanup can end it with everything it started (pgBackRest's workers).
    const child = spawn(file, full, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const pid = child.pid;
    if (pid !== undefined) children.set(pid, new Promise((done) => child.once('close', () => done())));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      if (pid !== undefined) children.delete(pid);
      if (code !== null && (options.okCodes ?? [0]).includes(code)) resolve({ code, stdout, stderr, ms });
      else reject(new Error(`${cmd} ${argv.join(' ')} failed (${signal ?? code}): ${(stderr || stdout).trim()}`));
    });
  });
}

function onPath(tool: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')].some((d) => d && existsSync(path.join(d, tool)));
}

/** Bytes of the regular files under dir, pg_wal's contents left out. */
function dataBytes(dir: string, top = dir): number {
  let sum = 0;
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue; // a file the server removed meanwhile
    }
    if (st.isDirectory()) {
      if (path.relative(top, p) !== 'pg_wal') sum += dataBytes(p, top);
    } else if (st.isFile()) sum += st.size;
  }
  return sum;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let fs: LoopFs | undefined;
let cluster: Cluster | undefined;
let cleaning: Promise<void> | undefined;
let interrupted = false;

/** Ends the commands in flight, stops the cluster (killing the postmaster if pg_ctl cannot), unmounts, detaches the loop device, removes the image. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // A backup or tar still running would keep the filesystem busy.
    for (const [pid, ended] of [...children]) {
      const signal = (sig: NodeJS.Signals) => {
        try {
          process.kill(-pid, sig);
        } catch {
          /* already gone */
        }
      };
      signal('SIGTERM');
      const stopped = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!stopped) {
        signal('SIGKILL');
        await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
      }
    }
    if (cluster) {
      const c = cluster;
      await c.stop('immediate').catch((err: unknown) => process.stderr.write(`pg_ctl stop failed: ${(err as Error).message}\n`));
      const pidFile = path.join(c.data, 'postmaster.pid');
      if (existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
        if (pid > 0) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }
    fs?.teardown();
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    interrupted = true;
    process.stderr.write(`\n${sig}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  if (!onPath('pgbackrest')) throw new Error('pgbackrest is not installed: apt-get install -y pgbackrest (Debian package pgbackrest)');
  if (!onPath('tar')) throw new Error('GNU tar is not installed: apt-get install -y tar');
  requireTools('btrfs', 'mkfs.btrfs', 'losetup', 'mount', 'umount');
  if (!existsSync(ebrMain)) throw new Error(`${ebrMain} is missing: build first (npx tsc -p .)`);
  postgresIds();

  // Sparse image: the data, the ebr WAL archive (about the data's size after pgbench -i), pg_wal, and
  // two backups at a time, with room for btrfs's 1 GiB chunk allocation.
  const estimateMiB = Math.ceil(scale * 15.5);
  fs = makeLoopFs('btrfs', Math.max(4096, estimateMiB * 7 + 2048));
  chmodSync(path.dirname(fs.mountPoint), 0o755); // the postgres user must reach the mount
  const mnt = fs.mountPoint;
  const pgRoot = path.join(mnt, 'pg');
  sh('btrfs', ['subvolume', 'create', pgRoot]); // the subvolume ebr snapshots: the cluster and its socket only
  const { uid, gid } = postgresIds();
  sh('chown', [`${uid}:${gid}`, pgRoot]);
  const ebrDir = mkdirForPostgres(path.join(mnt, 'ebr'));
  const tarDir = path.join(mnt, 'tar');
  sh('mkdir', ['-p', tarDir]);
  const brDir = mkdirForPostgres(path.join(mnt, 'pgbackrest'));
  for (const d of ['repo', 'log', 'lock']) mkdirForPostgres(path.join(brDir, d));

  cluster = await initCluster(pgRoot);
  const setup = writeEbrConfig(ebrDir, cluster, { instance, provider: 'btrfs', instanceLines: compress === 'none' ? [] : [`compression: { type: ${compress}${compress === 'lz4' ? '' : `, level: ${compressor.level}`} }`] });
  const archiveCommand = `${process.execPath} ${ebrMain} --config ${setup.config} wal push --instance ${instance} %p`;
  cluster.conf({ archive_mode: 'on', archive_command: `'${archiveCommand}'` });
  await cluster.mustStart();

  process.stderr.write(`pgbench -i -s ${scale} into ${cluster.data} …\n`);
  const init = await cluster.pgbench(['-i', '-s', String(scale), '-q', 'postgres'], 60_000 + scale * 20_000);
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  await cluster.query('CHECKPOINT');
  await archiverIdle(cluster);

  const conf = path.join(brDir, 'pgbackrest.conf');
  writeFileSync(
    conf,
    [
      '[global]',
      `repo1-path=${path.join(brDir, 'repo')}`,
      `log-path=${path.join(brDir, 'log')}`,
      `lock-path=${path.join(brDir, 'lock')}`,
      'log-level-console=warn',
      'log-level-file=off',
      `compress-type=${compressor.pgbackrest}`,
      ...(compress === 'none' ? [] : [`compress-level=${compressor.level}`]),
      'start-fast=y',
      // pgBackRest does not own this cluster's archive_command (ebr does), so it cannot check its WAL.
      'archive-check=n',
      // Expiry runs untimed after each measured backup instead of inside it; nothing expires by count.
      'expire-auto=n',
      'repo1-retention-full=9999999',
      '',
      `[${stanza}]`,
      `pg1-path=${cluster.data}`,
      `pg1-port=${cluster.port}`,
      `pg1-socket-path=${cluster.socketDir}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
  );
  sh('chmod', ['644', conf]);
  const pgbackrest = (argv: string[]) => run('pgbackrest', [`--config=${conf}`, `--stanza=${stanza}`, ...argv], { postgres: true });
  await pgbackrest(['stanza-create']);

  const bytes = dataBytes(cluster.data);
  const c = cluster;
  const times: Record<string, number[]> = { tar: [], br1: [], br2: [], ebr: [], stream: [] };
  const windows: number[] = [];
  const ebrPhases = new Map<string, number[]>();
  const ebrSteps = new Map<string, number[]>();
  const written: Record<string, number> = {};
  let lastTar: string | undefined;
  let lastEbr: { backupId: string; location: string } | undefined;

  /** Waits for deleted snapshots to be cleaned and dirty data to be written, then drops the page cache. */
  const settle = async () => {
    await archiverIdle(c);
    await run('btrfs', ['subvolume', 'sync', mnt]);
    await run('sync', []);
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  };

  const methods: Record<string, (i: number) => Promise<void>> = {
    tar: async (i) => {
      const out = path.join(tarDir, `data-${i}.tar`);
      await settle();
      // Exit 1 is "a file changed as we read it": the server is up (as it is for the others).
      // pipefail: tar's own status counts in a pipe too; sync runs whatever tar said (exit 1 is taken, above).
      const script = compressor.pipe
        ? `set -o pipefail; tar -cf - --exclude="$2/pg_wal/*" -C "$1" "$2" | ${compressor.pipe} > "$0"; s=$?; sync; exit $s`
        : 'tar -cf "$0" --exclude="$2/pg_wal/*" -C "$1" "$2"; s=$?; sync; exit $s';
      const r = await run('bash', ['-c', script, out, path.dirname(c.data), path.basename(c.data)], { okCodes: [0, 1] });
      times.tar!.push(r.ms);
      written.tar = lstatSync(out).size;
      // The last one stays for the restore rounds.
      if (lastTar) rmSync(lastTar);
      lastTar = out;
    },
    br1: (i) => pgbackrestRun(1, i),
    br2: (i) => pgbackrestRun(2, i),
    ebr: async () => {
      await settle();
      const r = await run(process.execPath, [ebrMain, '--config', setup.config, '--json', 'backup']);
      const doc = JSON.parse(r.stdout) as { backupId: string; blockWindowMs: number; windowSteps: Record<string, number>; phases: Record<string, number>; location: string; bytes: number };
      times.ebr!.push(r.ms);
      times.stream!.push(doc.phases.stream ?? NaN);
      windows.push(doc.blockWindowMs);
      for (const [k, v] of Object.entries(doc.phases)) ebrPhases.set(k, [...(ebrPhases.get(k) ?? []), v]);
      for (const [k, v] of Object.entries(doc.windowSteps ?? {})) ebrSteps.set(k.replace(mnt, '<mnt>'), [...(ebrSteps.get(k.replace(mnt, '<mnt>')) ?? []), v]);
      const shown = JSON.parse((await run(process.execPath, [ebrMain, '--config', setup.config, '--json', 'show', doc.backupId])).stdout) as { storedBytes: number | null };
      written.ebr = shown.storedBytes ?? doc.bytes;
      if (lastEbr) rmSync(lastEbr.location, { recursive: true, force: true });
      lastEbr = doc;
    },
  };

  async function pgbackrestRun(processMax: number, i: number): Promise<void> {
    await settle();
    const r = await pgbackrest([`--process-max=${processMax}`, '--type=full', 'backup']);
    times[`br${processMax}`]!.push(r.ms);
    const info = JSON.parse((await pgbackrest(['--output=json', 'info'])).stdout) as Array<{ backup: Array<{ label: string; info: { size: number; repository?: { size?: number } } }> }>;
    const backups = info[0]?.backup ?? [];
    const last = backups.at(-1);
    if (!last) throw new Error(`pgbackrest info lists no backup after run ${i + 1}`);
    // What the repository holds (compressed when compress-type says so), not the database's size.
    written.pgbackrest = last.info.repository?.size ?? last.info.size;
    // pgBackRest never expires the only full backup: the older ones go, the newest stays until the next.
    for (const b of backups.slice(0, -1)) await pgbackrest([`--set=${b.label}`, 'expire']);
  }

  const order = Object.keys(methods);
  for (let i = 0; i < runs; i++) {
    const round = [...order.slice(i % order.length), ...order.slice(0, i % order.length)];
    for (const m of round) {
      await methods[m]!(i);
      process.stderr.write(`run ${i + 1}/${runs} ${m}: ${(times[m]!.at(-1) ?? NaN).toFixed(0)} ms\n`);
    }
  }

  // Restores of the last backup of each, into a fresh directory on the same filesystem, then sync.
  const restoreTimes: Record<string, number[]> = { tar: [], br2: [], ebr: [] };
  const into = (name: string) => mkdirForPostgres(path.join(mnt, `restore-${name}`));
  const restores: Record<string, () => Promise<void>> = {
    tar: async () => {
      const d = into('tar');
      await settle();
      const script = compressor.pipe ? `${compressor.pipe.split(' ')[0]} -dc "$0" | tar -xf - -C "$1" && sync` : 'tar -xf "$0" -C "$1" && sync';
      restoreTimes.tar!.push((await run('bash', ['-c', `set -o pipefail; ${script}`, lastTar!, d])).ms);
      rmSync(d, { recursive: true, force: true });
    },
    br2: async () => {
      const d = into('br');
      await settle();
      const r = await run('sh', ['-c', `runuser -u postgres -- pgbackrest --config=${conf} --stanza=${stanza} --process-max=2 --pg1-path="$0" restore && sync`, d]);
      restoreTimes.br2!.push(r.ms);
      rmSync(d, { recursive: true, force: true });
    },
    ebr: async () => {
      const d = path.join(mnt, 'restore-ebr');
      await settle();
      const r = await run('sh', ['-c', `"$0" "$1" --config "$2" --quiet restore --backup "$3" --to "$4" && sync`, process.execPath, ebrMain, setup.config, lastEbr!.backupId, d]);
      restoreTimes.ebr!.push(r.ms);
      rmSync(d, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < runs; i++) {
    const names = Object.keys(restores);
    for (const m of [...names.slice(i % names.length), ...names.slice(0, i % names.length)]) {
      await restores[m]!();
      process.stderr.write(`restore ${i + 1}/${runs} ${m}: ${(restoreTimes[m]!.at(-1) ?? NaN).toFixed(0)} ms\n`);
    }
  }

  const tar = median(times.tar!);
  const br2 = median(times.br2!);
  const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
  const rows: Array<[string, number[]]> = [
    ['GNU tar -cf + sync', times.tar!],
    ['pgBackRest full, process-max 1', times.br1!],
    ['pgBackRest full, process-max 2', times.br2!],
    ['ebr backup (btrfs, sha256, whole command)', times.ebr!],
    ['ebr stream phase alone', times.stream!],
  ];
  const w = Math.max(...rows.map(([n]) => n.length));
  const mb = (b: number | undefined) => (b === undefined ? '-' : (b / 1e6).toFixed(0));
  console.log(`\npgbench scale ${scale}: ${mb(bytes)} MB in the data directory without pg_wal (tar archive ${mb(written.tar)} MB, pgBackRest backup ${mb(written.pgbackrest)} MB, ebr stored ${mb(written.ebr)} MB); compression: ${compress}${compress === 'none' ? '' : ` level ${compressor.level}`}`);
  console.log(`loop-device btrfs, every output on the same filesystem; ${runs} runs, medians, page cache dropped before each run\n`);
  console.log(['method'.padEnd(w), 'ms'.padStart(8), 'MB/s'.padStart(6), 'x tar'.padStart(6), 'x pgBR2'.padStart(8), '  range ms'].join(' '));
  for (const [name, xs] of rows) {
    const m = median(xs);
    console.log([name.padEnd(w), m.toFixed(0).padStart(8), mbps(m).padStart(6), (m / tar).toFixed(2).padStart(6), (m / br2).toFixed(2).padStart(8), `  ${range(xs)}`].join(' '));
  }
  const listed = (m: Map<string, number[]>) => [...m].map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(', ');
  console.log(`\nebr block window: median ${median(windows).toFixed(1)} ms (range ${Math.min(...windows).toFixed(1)}–${Math.max(...windows).toFixed(1)} ms); steps (median ms): ${listed(ebrSteps)}`);
  console.log(`ebr phases (median ms): ${listed(ebrPhases)}`);
  const rt = median(restoreTimes.tar!);
  const rb = median(restoreTimes.br2!);
  const re = median(restoreTimes.ebr!);
  console.log(`\nrestore of the last backup into an empty directory, then sync (median ms, MB/s):`);
  console.log(`  GNU tar -x ${rt.toFixed(0)} (${mbps(rt)}), pgBackRest restore process-max 2 ${rb.toFixed(0)} (${mbps(rb)}), ebr restore --to ${re.toFixed(0)} (${mbps(re)}): ${(re / rt).toFixed(2)} × tar, ${(re / rb).toFixed(2)} × pgBackRest`);
  const ebr = median(times.ebr!);
  const goal = (ok: boolean) => (ok ? 'met' : 'NOT met');
  console.log(`goal: full backup ≤ 1.05 × GNU tar: ${(ebr / tar).toFixed(2)} × → ${goal(ebr <= 1.05 * tar)}`);
  console.log(`goal: full backup ≤ 0.7 × pgBackRest (process-max 2): ${(ebr / br2).toFixed(2)} × → ${goal(ebr <= 0.7 * br2)}`);
  console.log(`goal: restore ≤ 1.1 × GNU tar -x: ${(re / rt).toFixed(2)} × → ${goal(re <= 1.1 * rt)}`);
  console.log(`goal: restore ≤ 0.6 × pgBackRest restore (process-max 2): ${(re / rb).toFixed(2)} × → ${goal(re <= 0.6 * rb)}`);
}

/** Waits until the archiver has no segment left to push, so it never runs inside a timed backup. */
async function archiverIdle(c: Cluster, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [r] = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
    if (r?.n === 0) return;
    if (Date.now() > deadline) throw new Error(`the archiver still had ${r?.n} segments to push after ${timeoutMs} ms\n--- server log ---\n${c.log()}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

main()
  .then(cleanup, async (err: unknown) => {
    // After a signal, the command in flight failing is the cleanup's doing, not news.
    if (!interrupted) process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
    await cleanup();
  })
  .catch((err: unknown) => {
    process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
