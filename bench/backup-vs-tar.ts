/**
 * Benchmark (not a test): times `ebr backup` against GNU tar of the same files in the same run.
 *
 *   npm run bench -- [--size-mb 1024] [--runs 3] [--dir DIR] [--provider copy|reflink] [--parallel N] [--fs btrfs|xfs] [--no-drop-caches]
 *
 * --fs makes a loop-device filesystem of that kind for the run (root; btrfs-progs / xfsprogs), so the
 * reflink provider can be measured where it belongs, and removes it afterwards.
 *
 * It generates a SQLite instance of the given size (main + two attached databases), then alternates
 * `tar -cf` of the same files and `ebr backup` (sha256 of every byte included), dropping the page
 * cache before each run when it can (root), and prints medians and the ratio. Compare ratios measured
 * in one run, never absolute times across runs: the machines are shared and noisy.
 *
 * Two more rows say what incremental backups cost and save: `ebr backup` with blockSize 0 (no block
 * digests: the price of recording them in every backup), and `ebr backup --type incr` after 1 % of the
 * rows of each database were rewritten (time, and bytes stored against the full backup's).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const sizeMb = Number(opt('size-mb', '1024'));
const runs = Number(opt('runs', '3'));
const provider = opt('provider', 'copy');
const parallel = Number(opt('parallel', '2'));
const dropCaches = !args.includes('--no-drop-caches');
const dir = path.resolve(opt('dir', path.join(os.tmpdir(), `ebr-bench-${process.pid}`)));
const ebr = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function makeInstance(): string[] {
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const files = ['main', 'orders', 'audit'].map((n) => path.join(dir, 'data', `${n}.db`));
  const shares = [0.5, 0.3, 0.2];
  files.forEach((file, i) => {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO t (payload) VALUES (randomblob(?))');
    const rows = Math.ceil((sizeMb * shares[i]! * 1024 * 1024) / 8192);
    for (let done = 0; done < rows; done += 5000) {
      db.transaction(() => {
        for (let r = done; r < Math.min(rows, done + 5000); r++) insert.run(8000);
      })();
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  });
  const yaml = (blockSize?: number) => `catalog: ./var/catalog${blockSize === undefined ? '' : `-bs${blockSize}`}.db
instances:
  bench:
    adapter: sqlite
    sqlite: { main: ./data/main.db, attach: { orders: ./data/orders.db, audit: ./data/audit.db } }
    snapshot: { provider: ${provider}, staging: ./var/staging }
    target: { type: tar, path: ./var/backups }
    maxBlockMs: 3600000
    parallelStreams: ${parallel}
${blockSize === undefined ? '' : `    blockSize: ${blockSize}\n`}`;
  writeFileSync(path.join(dir, 'ebr.yaml'), yaml());
  writeFileSync(path.join(dir, 'ebr-noblocks.yaml'), yaml(0));
  return files;
}

function drop(): void {
  if (!dropCaches) return;
  execFileSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    /* not root: warm-cache numbers, said in the output */
  }
}

function timed(fn: () => void): number {
  drop();
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const fsKind = args.includes('--fs') ? opt('fs', 'btrfs') : undefined;
let loop: { dev: string; image: string } | undefined;
rmSync(dir, { recursive: true, force: true });
if (fsKind) {
  mkdirSync(dir, { recursive: true });
  const image = `${dir}.img`;
  execFileSync('truncate', ['-s', `${Math.ceil((sizeMb * 4) / 1024) + 2}G`, image]);
  const dev = execFileSync('losetup', ['-f', '--show', image]).toString().trim();
  loop = { dev, image };
  execFileSync(fsKind === 'xfs' ? 'mkfs.xfs' : 'mkfs.btrfs', fsKind === 'xfs' ? ['-q', '-m', 'reflink=1', dev] : ['-q', dev]);
  execFileSync('mount', [dev, dir]);
  process.on('exit', () => {
    try {
      execFileSync('umount', [dir]);
    } finally {
      execFileSync('losetup', ['-d', dev]);
      rmSync(image, { force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
console.log(`generating a ${sizeMb} MB SQLite instance in ${dir} …`);
const files = makeInstance();
const bytes = files.reduce((a, f) => a + Number(execFileSync('stat', ['-c', '%s', f]).toString()), 0);
const tarTimes: number[] = [];
const ebrTimes: number[] = [];
const streamTimes: number[] = [];
const windows: number[] = [];
const noBlockTimes: number[] = [];
const backup = (config: string, ...more: string[]) =>
  JSON.parse(execFileSync(process.execPath, [ebr, '--config', path.join(dir, config), '--json', 'backup', ...more]).toString()) as { blockWindowMs: number; phases: Record<string, number>; location: string; blocks?: { changed: number; total: number } };
for (let i = 0; i < runs; i++) {
  const out = path.join(dir, `tar-${i}.tar`);
  // ebr fsyncs every archive file before it calls a backup complete; tar gets the same `sync` to be fair.
  tarTimes.push(timed(() => execFileSync('sh', ['-c', 'tar -cf "$0" -C "$1" "$2" "$3" "$4" && sync', out, path.join(dir, 'data'), ...files.map((f) => path.basename(f))])));
  rmSync(out);
  let doc: { blockWindowMs: number; phases: Record<string, number>; location: string } | undefined;
  ebrTimes.push(timed(() => (doc = JSON.parse(execFileSync(process.execPath, [ebr, '--config', path.join(dir, 'ebr.yaml'), '--json', 'backup']).toString()))));
  streamTimes.push(doc!.phases.stream ?? NaN);
  windows.push(doc!.blockWindowMs);
  rmSync(doc!.location, { recursive: true, force: true });
  let plain: { location: string } | undefined;
  noBlockTimes.push(timed(() => (plain = backup('ebr-noblocks.yaml'))));
  rmSync(plain!.location, { recursive: true, force: true });
}

/**
 * Rewrites 1 % of the rows of every database in ten runs of neighbouring rows (the hot spots of a
 * working database), checkpointed into the files. Scattered single rows would touch most 1 MiB blocks
 * (128 rows of 8 KB each): that is what a smaller blockSize is for.
 */
function touchOnePercent(round: number): void {
  for (const file of files) {
    const db = new Database(file);
    const n = (db.prepare('SELECT max(id) AS n FROM t').get() as { n: number }).n;
    const update = db.prepare('UPDATE t SET payload = randomblob(8000) WHERE id = ?');
    db.transaction(() => {
      const run = Math.ceil(n / 1000);
      for (let r = 0; r < 10; r++) {
        const start = (r * 7919 * run + round * 104729) % Math.max(1, n - run);
        for (let k = 0; k < run; k++) update.run(1 + start + k);
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
}
const storedOf = (location: string) => Number(execFileSync('du', ['-sb', location]).toString().split('\t')[0]);
// The chain's first backup, kept: each incremental is compared with the one before it.
const base = backup('ebr.yaml');
const fullStored = storedOf(base.location);
const incrTimes: number[] = [];
const incrStored: number[] = [];
const incrChanged: number[] = [];
for (let i = 0; i < runs; i++) {
  touchOnePercent(i);
  let doc: ReturnType<typeof backup> | undefined;
  incrTimes.push(timed(() => (doc = backup('ebr.yaml', '--type', 'incr'))));
  incrStored.push(storedOf(doc!.location));
  incrChanged.push(doc!.blocks!.changed / doc!.blocks!.total);
}
const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
const rows = [
  ['GNU tar -cf + sync', median(tarTimes), 1],
  [`ebr backup (${provider}, sha256, whole command)`, median(ebrTimes), median(ebrTimes) / median(tarTimes)],
  ['ebr stream phase alone', median(streamTimes), median(streamTimes) / median(tarTimes)],
  ['ebr backup, blockSize 0 (no block digests)', median(noBlockTimes), median(noBlockTimes) / median(tarTimes)],
  ['ebr backup --type incr, 1 % of rows rewritten', median(incrTimes), median(incrTimes) / median(tarTimes)],
] as const;
console.log(`\n${(bytes / 1e6).toFixed(0)} MB in ${files.length} files, ${runs} runs, medians, ${dropCaches ? 'page cache dropped before each run (if root)' : 'warm cache'}`);
console.log(['method'.padEnd(44), 'ms'.padStart(8), 'MB/s'.padStart(6), 'x tar'.padStart(6)].join(' '));
for (const [name, ms, ratio] of rows) console.log([name.padEnd(44), ms.toFixed(0).padStart(8), mbps(ms).padStart(6), ratio.toFixed(2).padStart(6)].join(' '));
console.log(`block digests cost ${((median(ebrTimes) / median(noBlockTimes) - 1) * 100).toFixed(1)} % of the whole backup; an incremental after 1 % of rows rewritten stored ${((median(incrStored) / fullStored) * 100).toFixed(1)} % of the full backup's bytes (${(median(incrChanged) * 100).toFixed(1)} % of 1 MiB blocks changed) in ${((median(incrTimes) / median(ebrTimes)) * 100).toFixed(0)} % of its time`);
console.log(`block window: median ${median(windows).toFixed(1)} ms (${provider}${loop ? ` on ${fsKind} over a loop device` : ''})`);
if (!loop) rmSync(dir, { recursive: true, force: true });
