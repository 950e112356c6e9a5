/**
 * Benchmark (not a test): the s3 log store and a space upload against a local s3rver.
 *
 *   npm run build --silent && node dist/bench/s3-logs.js [--segments 32] [--parallel 4] [--space-mib 512] [--part-mib 16] [--queue 4]
 *
 * Puts `--segments` WAL-sized (16 MiB) segments one after another, as archive_command does, then the
 * same number with `--parallel` puts at once, and prints segments per second for each; then streams one
 * space of `--space-mib` MiB through the s3 target (multipart, `--part-mib` parts, `--queue` at once)
 * and prints MB/s and the RSS growth. s3rver stores every byte on the local disk (twice for multipart:
 * parts, then the assembled object) and runs on the same cores, so these numbers bound ebr's overhead
 * from below; they say nothing of a real network.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { s3LogStore, s3Settings, s3Target } from '../src/archive/s3/index.js';
import { s3Credentials, startS3Server } from '../test/s3/s3-server.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const segments = Number(opt('segments', '32'));
const parallel = Number(opt('parallel', '4'));
const spaceMiB = Number(opt('space-mib', '512'));
const partMiB = Number(opt('part-mib', '16'));
const queue = Number(opt('queue', '4'));
const mib = 1 << 20;

Object.assign(process.env, s3Credentials);
const server = await startS3Server();
const dir = mkdtempSync(path.join(os.tmpdir(), 'ebr-bench-s3-'));
try {
  // Distinct files (random bytes: nothing compresses or dedups), written before the clock starts.
  const files = Array.from({ length: segments }, (_, i) => {
    const f = path.join(dir, `seg-${i}`);
    writeFileSync(f, randomBytes(16 * mib));
    return f;
  });
  const name = (run: string, i: number) => `0000000${run}${String(i).padStart(16, '0')}`;

  const one = s3LogStore(server.settings({ prefix: 'bench/' }), 'pg', 'wal');
  let t0 = performance.now();
  for (let i = 0; i < segments; i++) await one.put(name('1', i), files[i]!);
  const sequential = segments / ((performance.now() - t0) / 1000);

  t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < segments; i = next++) await one.put(name('2', i), files[i]!);
    }),
  );
  const concurrent = segments / ((performance.now() - t0) / 1000);
  console.log(`log store, 16 MiB segments: ${sequential.toFixed(1)} segments/s one at a time (${((sequential * 16 * mib) / 1e6).toFixed(0)} MB/s), ${concurrent.toFixed(1)} segments/s with ${parallel} at once`);

  const target = s3Target(s3Settings.parse(server.settings({ prefix: 'bench/', partSize: partMiB * mib, queueSize: queue })));
  const ref = { instance: 'pg', backupId: '20250101T000000Z-bench' };
  const writer = await target.create(ref);
  const space = await writer.openSpace('main');
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  const chunk = randomBytes(4 * mib);
  async function* source(): AsyncGenerator<Buffer> {
    // A fresh buffer each time, as a file reader hands them over (the sink may still hold the last one).
    for (let i = 0; i < spaceMiB / 4; i++) yield Buffer.from(chunk);
  }
  t0 = performance.now();
  await space.addFile({ name: 'main.db', type: 'file', size: spaceMiB * mib }, source(), new AbortController().signal);
  await space.close();
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  console.log(
    `space upload, ${spaceMiB} MiB in ${partMiB} MiB parts, ${queue} at once: ${((spaceMiB * mib) / 1e6 / seconds).toFixed(0)} MB/s, RSS grew by at most ${((peak - rss0) / mib).toFixed(0)} MiB`,
  );
  await target.remove(ref);
} finally {
  rmSync(dir, { recursive: true, force: true });
  await server.stop();
}
