/**
 * A SQLite instance for the fault tests: main.db and side.db padded to the sizes asked (two big spaces
 * stream at once with parallelStreams 2), notes.db small, and a config whose target, staging and
 * schedule the test chooses. Plus what the tests read back: catalog rows, open descriptors, events.
 */
import { existsSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { writeSqliteConfig } from '../sqlite/sqlite-instance.js';

export interface FaultInstance {
  dir: string;
  config: string;
  catalog: string;
  files: string[];
}

export function makeFaultInstance(
  dir: string,
  o: { mainMiB?: number; sideMiB?: number; target?: 'tar' | 'dir'; targetPath?: string; staging?: string; schedule?: string; parallelStreams?: number } = {},
): FaultInstance {
  mkdirSync(dir, { recursive: true });
  const main = path.join(dir, 'main.db');
  const side = path.join(dir, 'side.db');
  const notes = path.join(dir, 'notes.db');
  const db = new Database(main);
  db.pragma('journal_mode = WAL');
  db.prepare('ATTACH DATABASE ? AS side').run(side);
  db.prepare('ATTACH DATABASE ? AS notes').run(notes);
  db.exec(`
    CREATE TABLE pad (id INTEGER PRIMARY KEY, blob BLOB);
    CREATE TABLE side.pad (id INTEGER PRIMARY KEY, blob BLOB);
    CREATE TABLE notes.note (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
  `);
  db.transaction(() => {
    const n = db.prepare('INSERT INTO notes.note (body) VALUES (?)');
    for (let i = 0; i < 200; i++) n.run(`note ${i}`);
    const m = db.prepare('INSERT INTO pad (blob) VALUES (randomblob(65536))');
    for (let i = 0; i < (o.mainMiB ?? 1) * 16; i++) m.run();
    const s = db.prepare('INSERT INTO side.pad (blob) VALUES (randomblob(65536))');
    for (let i = 0; i < (o.sideMiB ?? 1) * 16; i++) s.run();
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const config = writeSqliteConfig(dir, {
    ...(o.target ? { target: o.target } : {}),
    ...(o.targetPath ? { targetPath: o.targetPath } : {}),
    ...(o.staging ? { staging: o.staging } : {}),
    ...(o.schedule ? { schedule: o.schedule } : {}),
    parallelStreams: o.parallelStreams ?? 2,
  });
  return { dir, config, catalog: path.join(dir, 'var/catalog.db'), files: [main, side, notes] };
}

/** One row from the instance's catalog, read-only; undefined while the catalog or its tables do not exist yet. */
export function catalogGet<T = Record<string, unknown>>(inst: FaultInstance, sql: string, ...params: unknown[]): T | undefined {
  if (!existsSync(inst.catalog)) return undefined;
  const db = new Database(inst.catalog, { readonly: true });
  try {
    return db.prepare(sql).get(...params) as T | undefined;
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return undefined;
    throw err;
  } finally {
    db.close();
  }
}

export function catalogAll<T = Record<string, unknown>>(inst: FaultInstance, sql: string, ...params: unknown[]): T[] {
  const db = new Database(inst.catalog, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** What a process has open, as paths (`/proc/<pid>/fd`); `self` for this one. */
export function openFiles(pid: number | 'self' = 'self'): string[] {
  const dir = `/proc/${pid}/fd`;
  const out: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      out.push(readlinkSync(path.join(dir, fd)));
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** Every file below dir (relative paths), for checking what a failed backup left. */
export function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((d) => !d.isDirectory())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name)));
}

export interface DaemonEventLine {
  event: string;
  backupId?: string;
  error?: string;
  hint?: string;
  phase?: string;
  removed?: string[];
  warnings?: string[];
  [key: string]: unknown;
}

export function eventsOf(out: string): DaemonEventLine[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DaemonEventLine);
}
