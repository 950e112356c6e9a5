/** A throwaway SQLite instance for the tests: a main database and attached ones, and its ebr config. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { catalogFor } from '../helpers/config-file.js';

export interface TestInstance {
  dir: string;
  config: string;
  main: string;
  side: string;
  notes: string;
}

/** main.db (ledger), side.db (mirror) and notes.db (free text), all in WAL mode; optional padding makes main bigger. */
export function makeInstance(dir: string, options: { provider?: string; target?: 'tar' | 'dir'; maxBlockMs?: number; padMiB?: number; sqliteCatalog?: boolean } = {}): TestInstance {
  mkdirSync(dir, { recursive: true });
  const main = path.join(dir, 'main.db');
  const side = path.join(dir, 'side.db');
  const notes = path.join(dir, 'notes.db');
  const db = new Database(main);
  db.pragma('journal_mode = WAL');
  db.prepare('ATTACH DATABASE ? AS side').run(side);
  db.prepare('ATTACH DATABASE ? AS notes').run(notes);
  db.pragma('side.journal_mode = WAL');
  db.pragma('notes.journal_mode = WAL');
  db.exec(`
    CREATE TABLE ledger (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL);
    CREATE TABLE pad (id INTEGER PRIMARY KEY, blob BLOB);
    CREATE TABLE side.mirror (seq INTEGER PRIMARY KEY);
    CREATE TABLE notes.note (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
  `);
  db.transaction(() => {
    const n = db.prepare('INSERT INTO notes.note (body) VALUES (?)');
    for (let i = 0; i < 500; i++) n.run(`note ${i}`);
    const p = db.prepare('INSERT INTO pad (blob) VALUES (randomblob(?))');
    for (let i = 0; i < (options.padMiB ?? 0) * 16; i++) p.run(65536);
  })();
  db.close();
  const config = writeSqliteConfig(dir, {
    ...(options.provider ? { provider: options.provider } : {}),
    ...(options.target ? { target: options.target } : {}),
    ...(options.sqliteCatalog ? { sqliteCatalog: true } : {}),
    maxBlockMs: options.maxBlockMs ?? 10000,
  });
  return { dir, config, main, side, notes };
}

export interface SqliteConfigOptions {
  provider?: string;
  staging?: string;
  target?: 'tar' | 'dir';
  targetPath?: string;
  maxBlockMs?: number;
  parallelStreams?: number;
  schedule?: string;
  /** More keys of the instance, as YAML lines without the indentation (e.g. `compression: { type: zstd }`). */
  extra?: string[];
  /** The catalog is the SQLite file even under the PostgreSQL-catalog switch (tests about that file). */
  sqliteCatalog?: boolean;
}

/** ebr.yaml for instance `t` over main.db with side.db and notes.db attached, in dir; returns its path. */
export function writeSqliteConfig(dir: string, o: SqliteConfigOptions = {}): string {
  const config = path.join(dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${o.sqliteCatalog ? './var/catalog.db' : catalogFor('./var/catalog.db')}`,
      'instances:',
      '  t:',
      '    adapter: sqlite',
      '    sqlite: { main: ./main.db, attach: { side: ./side.db, notes: ./notes.db }, busyTimeoutMs: 10000 }',
      `    snapshot: { provider: ${o.provider ?? 'copy'}, staging: ${o.staging ?? './var/staging'} }`,
      `    target: { type: ${o.target ?? 'tar'}, path: ${o.targetPath ?? './var/backups'} }`,
      ...(o.maxBlockMs !== undefined ? [`    maxBlockMs: ${o.maxBlockMs}`] : []),
      ...(o.parallelStreams !== undefined ? [`    parallelStreams: ${o.parallelStreams}`] : []),
      ...(o.schedule ? [`    schedule: "${o.schedule}"`] : []),
      ...(o.extra ?? []).map((l) => `    ${l}`),
      '',
    ].join('\n'),
  );
  return config;
}

export function query<T>(file: string, sql: string, attach: Record<string, string> = {}): T {
  const db = new Database(file, { fileMustExist: true });
  try {
    for (const [name, f] of Object.entries(attach)) db.prepare(`ATTACH DATABASE ? AS ${name}`).run(f);
    return db.prepare(sql).get() as T;
  } finally {
    db.close();
  }
}

export function integrity(file: string): string {
  const db = new Database(file, { fileMustExist: true });
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}
