/**
 * The catalog database: opened once per command, migrated on open. A file is SQLite (WAL, so readers
 * never wait on a backup; one host); `postgres://user@host:port/db` is PostgreSQL (many hosts, one
 * catalog). Both behind one DbHandle (db.ts): the catalog's queries are written once.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { EbrError } from '../errors.js';
import { SqliteDb, type DbHandle } from './db.js';
import { migrations } from './migrations.js';
import { PgDb, redactUrl } from './pg-db.js';

export type CatalogDb = DbHandle;

export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/**
 * Where this host keeps what belongs beside the catalog (the watchdog's records, copy staging, drill
 * scratch): the SQLite file's directory, or for a PostgreSQL catalog `var/` beside the config file.
 */
export function localStateDir(config: { file: string; catalog: string }): string {
  return isPostgresUrl(config.catalog) ? path.join(path.dirname(config.file), 'var') : path.dirname(config.catalog);
}

export class Catalog {
  readonly db: CatalogDb;
  /** For a SQLite catalog its file; for PostgreSQL a path in the local state directory (only its directory is used). */
  readonly file: string;
  /** What to call the catalog in messages (a URL without its password). */
  readonly name: string;
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(db: CatalogDb, file: string, name: string) {
    this.db = db;
    this.file = file;
    this.name = name;
  }

  static open(spec: string, o: { localDir?: string; migrate?: boolean } = {}): Catalog {
    if (isPostgresUrl(spec)) return Catalog.openPostgres(spec, o);
    if (/^[a-z]+:\/\//i.test(spec)) {
      throw new EbrError('config', `catalog ${spec}: a catalog is a SQLite file or a postgres:// URL`, { hint: 'set catalog: to a file path, e.g. ./var/catalog.db, or to postgres://user@host:5432/db' });
    }
    const file = spec;
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      // Loaded here, not at import: a command that never opens the catalog (ebr log push) never loads it.
      const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof Database;
      const raw = new Sqlite(file);
      raw.pragma('journal_mode = WAL');
      raw.pragma('busy_timeout = 10000');
      raw.pragma('foreign_keys = ON');
      // NORMAL in WAL mode: commits stay atomic and ordered, and journaling a phase costs no fsync inside the window.
      raw.pragma('synchronous = NORMAL');
      const db = new SqliteDb(raw);
      if (o.migrate !== false) migrate(db, file);
      return new Catalog(db, file, file);
    } catch (err) {
      if (err instanceof EbrError) throw err;
      throw new EbrError('config', `cannot open the catalog ${file}: ${(err as Error).message}`, {
        hint: 'check the catalog: key in the config and that its directory is writable',
        context: { path: file },
        cause: err,
      });
    }
  }

  private static openPostgres(url: string, o: { localDir?: string; migrate?: boolean }): Catalog {
    const name = redactUrl(url);
    let db: PgDb;
    try {
      db = new PgDb(url, passwordFromFile());
    } catch (err) {
      const e = err as Error;
      throw new EbrError('catalog', `cannot open the catalog ${name}: ${e.message.replace(/^the PostgreSQL catalog \S+ is unavailable: /, '')}`, {
        hint: 'check that the server is up and reachable from this host, the user and database exist, and the password (${ENV} in the URL, PGPASSWORD, or PGPASSFILE / ~/.pgpass)',
        context: { catalog: name },
        cause: err,
      });
    }
    try {
      if (o.migrate !== false) migrate(db, name);
      const local = o.localDir ?? path.resolve('var');
      return new Catalog(db, path.join(local, 'catalog.postgres'), name);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Runs fn in one transaction that excludes other writers, so check-then-write steps (the lock) cannot interleave. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn);
  }

  /**
   * Like tx, but the commit is durable: on SQLite synchronous=FULL for this one transaction, so the WAL
   * is fsynced before it returns and a power loss right after cannot take it back. For the state changes
   * a user relies on (complete, failed, removed, an archive journaled); everything else stays NORMAL,
   * which costs no fsync (and journaling a phase inside the window must not wait for the disk). The
   * fsync covers every earlier NORMAL commit too: they are in the same WAL, before this one. Nested
   * in another transaction it just runs: the outer one decides how it is committed. PostgreSQL
   * flushes every commit.
   */
  durableTx<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.durable(true);
    try {
      return this.tx(fn);
    } finally {
      this.db.durable(false);
    }
  }

  /** The schema version of this catalog and the newest this ebr knows. */
  schema(): { version: number; known: number } {
    return { version: this.db.schemaVersion(), known: migrations.length };
  }

  /**
   * Renews, every third of the lease, the leases of the locks this process holds; stops by itself
   * when it holds none. Never keeps the process alive.
   */
  keepLeases(renew: () => number, everyMs: number): void {
    if (this.heartbeat) return;
    this.heartbeat = setInterval(() => {
      let held = 1;
      try {
        held = renew();
      } catch {
        // the catalog is away: the lease runs on, the next statement of the work reports it
      }
      if (held === 0) this.stopLeases();
    }, everyMs);
    this.heartbeat.unref();
  }

  stopLeases(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  close(): void {
    this.stopLeases();
    if (this.db.open) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** EBR_CATALOG_PASSWORD_FILE names a file that holds the password (first line); PGPASSWORD and PGPASSFILE work as in libpq. */
function passwordFromFile(): { password?: string } {
  const file = process.env.EBR_CATALOG_PASSWORD_FILE;
  if (!file) return {};
  try {
    const text = readFileSync(file, 'utf8');
    return { password: text.split('\n')[0]!.trim() };
  } catch (err) {
    throw new EbrError('config', `cannot read the catalog password file ${file} (EBR_CATALOG_PASSWORD_FILE): ${(err as Error).message}`, {
      hint: 'point EBR_CATALOG_PASSWORD_FILE at a file readable by this user holding the password',
    });
  }
}

/** Migrates to the newest schema this ebr knows, in one transaction (two hosts migrating at once: one waits, the other finds it done). */
function migrate(db: DbHandle, name: string): { from: number; to: number } {
  return db.transaction(() => {
    const version = db.schemaVersion();
    refuseNewer(version, name);
    for (let v = version; v < migrations.length; v++) {
      db.exec(migrations[v]!);
      db.setSchemaVersion(v + 1);
    }
    return { from: version, to: Math.max(version, migrations.length) };
  });
}

/** `ebr catalog migrate`: a catalog opened with migrate: false, brought to this ebr's schema. */
export function migrateCatalog(cat: Catalog): { from: number; to: number; known: number } {
  return { ...migrate(cat.db, cat.name), known: migrations.length };
}

export function refuseNewer(version: number, name: string): void {
  if (version > migrations.length) {
    throw new EbrError('config', `the catalog ${name} is of schema version ${version}, newer than this ebr understands (${migrations.length})`, {
      hint: 'upgrade ebr on this host to the version that migrated the catalog, or point catalog: at another catalog',
      context: { catalog: name, schemaVersion: version, known: migrations.length },
    });
  }
}

export function now(): string {
  return new Date().toISOString();
}
