/**
 * The window, measured from outside: a btrfs loop device holding SQLite databases of chosen sizes, a
 * writer committing every millisecond to one of them, and `ebr backup` run as a real process. Shared by
 * test/snapshot/window.test.ts and bench/window.ts, which pass where the CLI and the writer live.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { readStatusFile } from '../helpers/status-file.js';
import { makeLoopFs, sh, type LoopFs } from './loopfs.js';

export interface LabPaths {
  /** dist/src/cli/main.js */
  ebrBin: string;
  /** test/snapshot/window-writer.mjs */
  writerScript: string;
}

export interface Lab {
  fs: LoopFs;
  /** Where the databases live: a subvolume on btrfs, a directory on XFS. */
  data: string;
  /**
   * Catalog and archives: on another filesystem, as in production — an archive fsynced on the data's
   * own btrfs stalls its writers through the shared transaction commit, which is not the window.
   */
  varDir: string;
  /** Where `copy` stages: the data's filesystem, outside the data subvolume. */
  staging: string;
  config: string;
  teardown(): void;
}

export interface InstanceSpec {
  db: string;
  provider: string;
  maxBlockMs?: number;
}

/** A loop-device filesystem with a `data` directory (a subvolume on btrfs) for the databases. */
export function makeLab(imageMiB: number, fsType: 'btrfs' | 'xfs' = 'btrfs'): Lab {
  const fs = makeLoopFs(fsType, imageMiB);
  try {
    const data = path.join(fs.mountPoint, 'data');
    if (fsType === 'btrfs') sh('btrfs', ['subvolume', 'create', data]);
    else mkdirSync(data);
    const varDir = mkdtempSync(path.join(os.tmpdir(), 'ebr-window-'));
    return {
      fs,
      data,
      varDir,
      staging: path.join(fs.mountPoint, 'staging'),
      config: path.join(varDir, 'ebr.yaml'),
      teardown: () => {
        fs.teardown();
        rmSync(varDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    fs.teardown();
    throw err;
  }
}

/** A SQLite database of about sizeMiB in the data subvolume (random blobs, so nothing compresses it away). */
export function makeDatabase(lab: Lab, name: string, sizeMiB: number): string {
  const file = path.join(lab.data, name);
  const db = new Database(file);
  try {
    // Filled without WAL (written once, not twice), then switched to WAL as a live server would run.
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = OFF');
    db.exec('CREATE TABLE pad (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)');
    const insert = db.prepare('INSERT INTO pad (blob) VALUES (randomblob(65536))');
    const perTx = 16 * 64;
    for (let done = 0; done < sizeMiB * 16; done += perTx) {
      db.transaction(() => {
        for (let i = 0; i < Math.min(perTx, sizeMiB * 16 - done); i++) insert.run();
      })();
    }
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  // On disk before anything is measured: a snapshot commit writes back what is dirty, and freshly made
  // gigabytes would otherwise land in the first window.
  sh('sync', ['-f', file]);
  return file;
}

export function writeConfig(lab: Lab, instances: Record<string, InstanceSpec>): void {
  const lines = ['catalog: ./catalog.db', 'instances:'];
  for (const [name, spec] of Object.entries(instances)) {
    lines.push(
      `  ${name}:`,
      '    adapter: sqlite',
      `    sqlite: { main: ${JSON.stringify(spec.db)}, busyTimeoutMs: 60000 }`,
      `    snapshot: { provider: ${spec.provider}, staging: ${JSON.stringify(lab.staging)} }`,
      `    target: { type: tar, path: ./backups }`,
      `    maxBlockMs: ${spec.maxBlockMs ?? 60000}`,
    );
  }
  writeFileSync(lab.config, `${lines.join('\n')}\n`);
}

export interface WriterStatus {
  seq: number;
  worstStallMs: number;
  /** Stalls over 10 ms: [start, end] in epoch ms. */
  stalls: Array<[number, number]>;
  since: number;
  lastCommitAt: number;
}

export interface Writer {
  proc: ChildProcess;
  status(): WriterStatus | undefined;
  /** Starts a new measurement; resolves once the writer has taken it in. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startWriter(paths: LabPaths, db: string): Promise<Writer> {
  const statusFile = `${db}.writer.json`;
  rmSync(statusFile, { force: true });
  const proc = spawn(process.execPath, [paths.writerScript, db, statusFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  const status = (): WriterStatus | undefined => readStatusFile<WriterStatus>(statusFile);
  await until('the writer to commit', () => (status()?.seq ?? 0) > 100, 20_000);
  return {
    proc,
    status,
    async reset() {
      const before = Date.now();
      proc.kill('SIGUSR1');
      await until('the writer to start a new measurement', () => (status()?.since ?? 0) >= before, 5_000);
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export interface Measured {
  code: number;
  stderr: string;
  /** The writer's longest gap between two commits while ebr ran. */
  stallMs: number;
  /** The longest stall that overlapped the window (the acquire and release phases ebr journaled). */
  windowStallMs?: number;
  /** What ebr recorded: block → unblock, and the steps inside it. */
  windowMs?: number;
  steps?: Record<string, number>;
  /** How long the stream phase took: what a writer waiting for the copy would have stalled for. */
  streamMs?: number;
}

/** One `ebr backup` of an instance while the writer runs; the archive is removed after, to spare the disk. */
export async function measuredBackup(paths: LabPaths, lab: Lab, instance: string, writer: Writer, env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  await writer.reset();
  const r = await run(paths.ebrBin, ['--config', lab.config, '--json', 'backup', '--instance', instance], env);
  // One more status after ebr is done, so a stall that ended with the backup is in it.
  const seq = writer.status()!.seq;
  await until('the writer to commit after the backup', () => (writer.status()?.seq ?? 0) > seq + 5, 10_000);
  const { worstStallMs: stallMs, stalls } = writer.status()!;
  let windowStallMs: number | undefined;
  let streamMs: number | undefined;
  const show = await run(paths.ebrBin, ['--config', lab.config, '--json', 'show', 'latest', '--instance', instance]);
  if (r.code === 0 && show.code === 0) {
    const phases = (JSON.parse(show.stdout) as { phases: Array<{ phase: string; startedAt: string; endedAt: string | null }> }).phases;
    const from = Date.parse(phases.find((p) => p.phase === 'acquire')!.startedAt);
    const to = Date.parse(phases.find((p) => p.phase === 'release')!.endedAt!);
    windowStallMs = Math.max(0, ...stalls.filter(([s, e]) => s <= to && e >= from).map(([s, e]) => e - s));
    const stream = phases.find((p) => p.phase === 'stream');
    if (stream?.endedAt) streamMs = Date.parse(stream.endedAt) - Date.parse(stream.startedAt);
  }
  let doc: { blockWindowMs?: number; windowSteps?: Record<string, number> } = {};
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    // a failed backup prints its error document, or nothing
  }
  const backups = path.join(lab.varDir, 'backups');
  if (existsSync(backups)) rmSync(backups, { recursive: true, force: true });
  return { code: r.code, stderr: r.stderr, stallMs, ...(windowStallMs !== undefined ? { windowStallMs } : {}), ...(doc.blockWindowMs !== undefined ? { windowMs: doc.blockWindowMs } : {}), ...(doc.windowSteps ? { steps: doc.windowSteps } : {}), ...(streamMs !== undefined ? { streamMs } : {}) };
}

export function run(ebrBin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ebrBin, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
