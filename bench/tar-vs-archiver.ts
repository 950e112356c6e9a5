/**
 * Benchmark (not a test): the tar writer on the backup's hot path, side by side with archiver's tar
 * mode and GNU tar, on the same files in the same run.
 *
 *   npm run build && node dist/bench/tar-vs-archiver.js [--size-mb 512] [--runs 3] [--dir DIR] [--no-drop-caches]
 *
 * It writes ~size-mb of incompressible files (three database-sized ones and 256 small ones), then
 * alternates the four writers, each writing one tar of all of them to the same directory:
 *   - ebr: tarSpaceWriter over a FileSink, the files read by readFileChunks (what `ebr backup` streams,
 *     sha256 of every byte included);
 *   - archiver: TarArchive with archive.file() for each, piped to a file;
 *   - archiver doing the same work as ebr: each file read by readFileChunks and hashed on its way in;
 *   - GNU tar: tar -cf.
 * Every one ends with an fsync of its tar file (FileSink fsyncs on close; the others get the same),
 * the page cache is dropped before each run when it can be (root), and the medians are printed in MB/s.
 * Compare ratios measured in one run, never absolute figures across runs: the machines are shared.
 * `ebr export` uses archiver for zip and tgz; this keeps the evidence for not using it on the hot path.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createWriteStream, mkdirSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarArchive } from 'archiver';
import { readFileChunks } from '../src/archive/digest-copy.js';
import { FileSink } from '../src/archive/file-sink.js';
import { tarSpaceWriter } from '../src/archive/tar-stream.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const sizeMb = Number(opt('size-mb', '512'));
const runs = Number(opt('runs', '3'));
const dropCaches = !args.includes('--no-drop-caches');
const dir = path.resolve(opt('dir', path.join(os.tmpdir(), `ebr-bench-tar-${process.pid}`)));
const data = path.join(dir, 'data');

/** Three large files (50 %, 30 %, 14 %) and 256 small ones (6 %); returns their names under data/. */
function makeFiles(): string[] {
  mkdirSync(path.join(data, 'small'), { recursive: true });
  const total = sizeMb * 1024 * 1024;
  const block = Buffer.alloc(4 << 20);
  const write = (name: string, bytes: number) => {
    const fd = openSync(path.join(data, name), 'wx');
    try {
      for (let done = 0; done < bytes; done += block.length) {
        const n = Math.min(block.length, bytes - done);
        randomFillSync(block, 0, n);
        writeSync(fd, block, 0, n);
      }
    } finally {
      closeSync(fd);
    }
  };
  const names: string[] = [];
  for (const [name, share] of [['main.db', 0.5], ['orders.db', 0.3], ['audit.db', 0.14]] as const) {
    write(name, Math.floor((total * share) / 4096) * 4096);
    names.push(name);
  }
  const small = Math.floor((total * 0.06) / 256);
  for (let i = 0; i < 256; i++) {
    const name = `small/${String(i).padStart(3, '0')}.db`;
    write(name, small);
    names.push(name);
  }
  return names;
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

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function ebrTar(names: string[], out: string): Promise<void> {
  const signal = new AbortController().signal;
  const writer = tarSpaceWriter(new FileSink(out), 'bench.tar');
  for (const name of names) {
    const file = path.join(data, name);
    const st = await lstat(file);
    await writer.addFile({ name, type: 'file', size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs }, readFileChunks(file, signal), signal);
  }
  // FileSink.close fsyncs the file.
  await writer.close();
}

async function archiverTar(names: string[], out: string): Promise<void> {
  const archive = new TarArchive();
  const written = pipeline(archive, createWriteStream(out, { flags: 'wx' }));
  for (const name of names) archive.file(path.join(data, name), { name });
  await archive.finalize();
  await written;
  await fsyncFile(out);
}

/** archiver doing the hot path's work: each file read by readFileChunks and hashed on its way in. */
async function archiverTarHashed(names: string[], out: string): Promise<void> {
  const archive = new TarArchive();
  const written = pipeline(archive, createWriteStream(out, { flags: 'wx' }));
  for (const name of names) {
    const file = path.join(data, name);
    const st = await lstat(file);
    const hash = createHash('sha256');
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const b of readFileChunks(file)) {
        hash.update(b);
        yield b;
      }
    }
    // `stats` with the size lets archiver's tar stream the entry instead of collecting it in memory.
    const entered = new Promise<void>((resolve, reject) => {
      archive.once('entry', () => resolve());
      archive.once('error', reject);
    });
    archive.append(Readable.from(hashed(), { objectMode: false, highWaterMark: 1 << 20 }), { name, mode: st.mode & 0o7777, date: st.mtime, stats: st });
    await entered;
    hash.digest('hex');
  }
  await archive.finalize();
  await written;
  await fsyncFile(out);
}

async function gnuTar(names: string[], out: string): Promise<void> {
  execFileSync('tar', ['-cf', out, '-C', data, ...names]);
  await fsyncFile(out);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

rmSync(dir, { recursive: true, force: true });
console.log(`writing ${sizeMb} MB of files in ${dir} …`);
const names = makeFiles();
const bytes = names.reduce((a, n) => a + statSync(path.join(data, n)).size, 0);
const methods = [
  ['ebr tarSpaceWriter (sha256 included)', ebrTar],
  ['archiver tar (TarArchive, archive.file)', archiverTar],
  ['archiver tar + sha256 (readFileChunks)', archiverTarHashed],
  ['GNU tar -cf', gnuTar],
] as const;
const times = methods.map(() => [] as number[]);
for (let run = 0; run < runs; run++) {
  for (const [i, [label, write]] of methods.entries()) {
    const out = path.join(dir, `out-${i}.tar`);
    drop();
    const t0 = performance.now();
    await write(names, out);
    times[i]!.push(performance.now() - t0);
    // Each writer's tar holds every file: GNU tar lists them all.
    if (run === 0) {
      const listed = execFileSync('tar', ['-tf', out], { maxBuffer: 16 << 20 }).toString().trim().split('\n').length;
      if (listed !== names.length) throw new Error(`${label} wrote a tar with ${listed} members, not ${names.length}`);
    }
    rmSync(out);
  }
}
const tarMs = median(times[methods.length - 1]!);
const mbps = (ms: number) => bytes / 1e6 / (ms / 1000);
console.log(`\n${(bytes / 1e6).toFixed(0)} MB in ${names.length} files, ${runs} runs, medians, each ended by an fsync of its tar; ${dropCaches ? 'page cache dropped before each run (if root)' : 'warm cache'}`);
console.log(['writer'.padEnd(42), 'ms'.padStart(8), 'MB/s'.padStart(7), 'x tar'.padStart(6)].join(' '));
for (const [i, [label]] of methods.entries()) {
  const ms = median(times[i]!);
  console.log([label.padEnd(42), ms.toFixed(0).padStart(8), mbps(ms).toFixed(0).padStart(7), (mbps(ms) / mbps(tarMs)).toFixed(2).padStart(6)].join(' '));
}
rmSync(dir, { recursive: true, force: true });
