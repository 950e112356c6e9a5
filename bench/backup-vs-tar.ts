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
  writeFileSync(
    path.join(dir, 'ebr.yaml'),
    `catalog: ./var/catalog.db
instances:
  bench:
    adapter: sqlite
    sqlite: { main: ./data/main.db, attach: { orders: ./data/orders.db, audit: ./data/audit.db } }
    snapshot: { provider: ${provider}, staging: ./var/staging }
    target: { type: tar, path: ./var/backups }
    maxBlockMs: 3600000
    parallelStreams: ${parallel}
`,
  );
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
}
const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
const rows = [
  ['GNU tar -cf + sync', median(tarTimes), 1],
  [`ebr backup (${provider}, sha256, whole command)`, median(ebrTimes), median(ebrTimes) / median(tarTimes)],
  ['ebr stream phase alone', median(streamTimes), median(streamTimes) / median(tarTimes)],
] as const;
console.log(`\n${(bytes / 1e6).toFixed(0)} MB in ${files.length} files, ${runs} runs, medians, ${dropCaches ? 'page cache dropped before each run (if root)' : 'warm cache'}`);
console.log(['method'.padEnd(44), 'ms'.padStart(8), 'MB/s'.padStart(6), 'x tar'.padStart(6)].join(' '));
for (const [name, ms, ratio] of rows) console.log([name.padEnd(44), ms.toFixed(0).padStart(8), mbps(ms).padStart(6), ratio.toFixed(2).padStart(6)].join(' '));
console.log(`block window: median ${median(windows).toFixed(1)} ms (${provider}${loop ? ` on ${fsKind} over a loop device` : ''})`);
if (!loop) rmSync(dir, { recursive: true, force: true });
