/**
 * The point of a snapshot provider: on btrfs a live database is blocked for tens of milliseconds,
 * whatever its size; with `copy` the block grows with the size. Measured from outside by a writer that
 * commits every millisecond during `ebr backup`, at ~200 MB and ~1 GB (kept modest: the machine is shared).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';
import { ensureBuilt, sourcesUnder } from '../watchdog/built.js';
import { requireTools } from './loopfs.js';
import { makeDatabase, makeLab, measuredBackup, startWriter, writeConfig, type Lab, type LabPaths, type Measured } from './window-lab.js';

/** Writers may stall at most this long during a backup with a snapshot provider (PERF.md's goal). */
const stallBoundMs = 100;
const smallMiB = 200;
const largeMiB = 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('the window, measured by a writer committing every millisecond', () => {
  let lab: Lab | undefined;
  let paths: LabPaths;
  const dbs: Record<'small' | 'large', string> = { small: '', large: '' };
  const results: Record<string, Measured[]> = {};

  beforeAll(() => {
    requireTools('btrfs', 'mkfs.btrfs');
    paths = { ebrBin: ensureBuilt(sourcesUnder('src', 'adapters'), 'dist/src/cli/main.js'), writerScript: path.join(repoRoot, 'test/snapshot/window-writer.mjs') };
    // Databases (1.2 GB) + copy staging (up to 1 GB), on a sparse image; archives go to another filesystem.
    lab = makeLab(3072);
    dbs.small = makeDatabase(lab, 'small.db', smallMiB);
    dbs.large = makeDatabase(lab, 'large.db', largeMiB);
    writeConfig(lab, {
      'small-btrfs': { db: dbs.small, provider: 'btrfs' },
      'large-btrfs': { db: dbs.large, provider: 'btrfs' },
      'small-copy': { db: dbs.small, provider: 'copy' },
      'large-copy': { db: dbs.large, provider: 'copy' },
    });
  }, 300_000);
  afterAll(() => {
    const f = (xs: Array<number | undefined>) => xs.map((x) => (x === undefined ? '-' : x.toFixed(0))).join(', ');
    console.log(
      ['instance       stall in window (ms)   worst stall in backup (ms)   recorded window (ms)   stream phase (ms)']
        .concat(Object.entries(results).map(([k, rs]) => `${k.padEnd(15)}${f(rs.map((r) => r.windowStallMs)).padEnd(23)}${f(rs.map((r) => r.stallMs)).padEnd(29)}${f(rs.map((r) => r.windowMs)).padEnd(23)}${f(rs.map((r) => r.streamMs))}`))
        .join('\n'),
    );
    lab?.teardown();
  });

  async function backups(instance: string, db: string, times: number): Promise<Measured[]> {
    const writer = await startWriter(paths, db);
    try {
      const out: Measured[] = [];
      for (let i = 0; i < times; i++) {
        const m = await measuredBackup(paths, lab!, instance, writer);
        expect(m.code, m.stderr).toBe(0);
        out.push(m);
      }
      results[instance] = out;
      return out;
    } finally {
      await writer.stop();
    }
  }

  it(`btrfs: the writer's stall stays under ${stallBoundMs} ms and does not grow from ${smallMiB} MB to ${largeMiB} MB`, async () => {
    // Three backups per size, compared by their median: one slow transaction commit on a shared disk is noise, not growth.
    const small = await backups('small-btrfs', dbs.small, 3);
    const large = await backups('large-btrfs', dbs.large, 3);
    const inWindow = { small: median(small.map((m) => m.windowStallMs!)), large: median(large.map((m) => m.windowStallMs!)) };
    const whole = { small: median(small.map((m) => m.stallMs)), large: median(large.map((m) => m.stallMs)) };
    const window = { small: median(small.map((m) => m.windowMs!)), large: median(large.map((m) => m.windowMs!)) };
    // What the block costs the writer: a few tens of ms, the same at both sizes.
    expect(inWindow.small).toBeLessThan(stallBoundMs);
    expect(inWindow.large).toBeLessThan(stallBoundMs);
    expect(inWindow.large - inWindow.small).toBeLessThan(50);
    expect(window.small).toBeLessThan(stallBoundMs);
    expect(window.large).toBeLessThan(stallBoundMs);
    // And over the whole backup (checkpoint and streaming included) the writer never waits for the data to be copied:
    // its worst stall is a fraction of the stream phase. (An absolute bound here measured the shared disk's load, not ebr:
    // streaming 1 GB next to a writer that fsyncs every commit slows each commit whatever ebr does.)
    const streamed = median(large.map((m) => m.streamMs!));
    expect(streamed).toBeGreaterThan(0);
    expect(whole.large).toBeLessThan(0.5 * streamed);
    // Every backup records its window and the steps inside it, the provider's own included.
    for (const m of [...small, ...large]) {
      expect(m.windowMs).toBeGreaterThan(0);
      expect(Object.keys(m.steps ?? {})).toEqual(expect.arrayContaining(['block', 'snapshot', 'unblock', 'snapshot.snapshots']));
    }
  }, 600_000);

  it(`copy: the writer is held for the whole window, which is spent copying`, async () => {
    const [small] = await backups('small-copy', dbs.small, 1);
    const [large] = await backups('large-copy', dbs.large, 1);
    for (const m of [small!, large!]) {
      // The writer waits as long as the window lasts (one event seen from both sides, not two timings compared)…
      expect(m.windowStallMs!).toBeGreaterThan(0.8 * m.windowMs!);
      // …and the window is spent copying: the provider's step is most of it.
      expect(m.steps!.snapshot!).toBeGreaterThan(0.5 * m.windowMs!);
    }
    // How the window grows with the size (five times the data here) is the window benchmark's to
    // measure (bench/), not a test's: two timings compared depend on the machine's load.
  }, 600_000);
});
