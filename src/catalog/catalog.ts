/** The catalog database: opened once per command, migrated on open, WAL so readers never wait on a backup. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { EbrError } from '../errors.js';
import { migrations } from './migrations.js';

export type CatalogDb = Database.Database;

export class Catalog {
  readonly db: CatalogDb;
  readonly file: string;

  private constructor(db: CatalogDb, file: string) {
    this.db = db;
    this.file = file;
  }

  static open(file: string): Catalog {
    if (/^[a-z]+:\/\//i.test(file)) {
      throw new EbrError('config', `catalog ${file}: only a SQLite file is supported as catalog so far`, { hint: 'set catalog: to a file path, e.g. ./var/catalog.db' });
    }
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      // Loaded here, not at import: a command that never opens the catalog (ebr log push) never loads it.
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      const db = new Sqlite(file);
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 10000');
      db.pragma('foreign_keys = ON');
      // NORMAL in WAL mode: commits stay atomic and ordered, and journaling a phase costs no fsync inside the window.
      db.pragma('synchronous = NORMAL');
      migrate(db);
      return new Catalog(db, file);
    } catch (err) {
      if (err instanceof EbrError) throw err;
      throw new EbrError('config', `cannot open the catalog ${file}: ${(err as Error).message}`, {
        hint: 'check the catalog: key in the config and that its directory is writable',
        context: { path: file },
        cause: err,
      });
    }
  }

  /** Runs fn in one IMMEDIATE transaction, so check-then-write steps (the lock) cannot interleave. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * Like tx, but the commit is durable: synchronous=FULL for this one transaction, so the WAL is
   * fsynced before it returns and a power loss right after cannot take it back. For the state changes
   * a user relies on (complete, failed, removed, an archive journaled); everything else stays NORMAL,
   * which costs no fsync (and journaling a phase inside the window must not wait for the disk). The
   * fsync covers every earlier NORMAL commit too: they are in the same WAL, before this one. Nested
   * in another transaction it just runs: the outer one decides how it is committed.
   */
  durableTx<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.pragma('synchronous = FULL');
    try {
      return this.tx(fn);
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function migrate(db: CatalogDb): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > migrations.length) {
    throw new EbrError('config', `the catalog is of schema version ${version}, newer than this ebr knows (${migrations.length})`, {
      hint: 'upgrade ebr, or point catalog: at another file',
    });
  }
  for (let v = version; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

export function now(): string {
  return new Date().toISOString();
}
