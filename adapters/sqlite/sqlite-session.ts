/**
 * The SQLite session: one connection with every attached database. The window is one
 * `BEGIN IMMEDIATE`, which takes the write lock on every attached database at once: writers wait
 * (with their busy timeout), readers go on. A passive WAL checkpoint before it keeps the -wal files small.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { BlockToken, DbmsSession } from '../../src/adapter-api.js';
import { chunkOf } from '../../src/chunks.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk, Space } from '../../src/model.js';

export interface SqliteFiles {
  /** schema name → absolute file path; `main` first. */
  [schema: string]: string;
}

export function sqliteSession(db: Database.Database, files: SqliteFiles, instance: string): DbmsSession {
  const schemas = Object.keys(files);
  const journalMode = (schema: string) => String(db.pragma(`"${schema}".journal_mode`, { simple: true })).toLowerCase();
  return {
    async describe() {
      return {
        sqliteVersion: (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v,
        journalModes: Object.fromEntries(schemas.map((s) => [s, journalMode(s)])),
      };
    },

    async discover() {
      const spaces: Space[] = [];
      for (const schema of schemas) {
        const file = files[schema]!;
        const chunks: Chunk[] = [];
        const main = await chunkOf(schema, path.basename(file), file, { role: 'database' });
        if (!main) throw new EbrError('discover', `database file ${file} of space ${schema} is gone`, { context: { instance, space: schema, path: file } });
        chunks.push(main);
        const mode = journalMode(schema);
        // In WAL mode, commits made after the checkpoint and before the block live only in the -wal file.
        if (mode === 'wal') {
          const wal = await chunkOf(schema, `${path.basename(file)}-wal`, `${file}-wal`, { role: 'wal' });
          if (wal) chunks.push(wal);
        }
        spaces.push({
          name: schema,
          critical: schema === 'main',
          kind: schema === 'main' ? 'main database' : 'attached database',
          chunks,
          details: { journalMode: mode },
          ...(mode === 'wal' || schema === 'main' ? {} : { notes: [`journal_mode=${mode}`] }),
        });
      }
      return spaces;
    },

    async checkpoint() {
      // PASSIVE: copies what it can without waiting for or blocking writers (TRUNCATE stalled them for
      // hundreds of ms); whatever stays in the -wal file is a chunk of its own and is backed up with it.
      for (const schema of schemas) {
        if (journalMode(schema) === 'wal') db.pragma(`"${schema}".wal_checkpoint(PASSIVE)`);
      }
    },

    async block(): Promise<BlockToken> {
      try {
        // BEGIN IMMEDIATE starts a write transaction on every attached database at once (sqlite build.c).
        db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw new EbrError('block', `could not take the write lock on ${instance}: ${(err as Error).message}`, {
          hint: 'a writer held the database longer than sqlite.busyTimeoutMs; raise it, or back up at a quieter time',
          context: { instance, phase: 'acquire' },
          cause: err,
        });
      }
      return { blockedAt: Date.now() };
    },

    async unblock() {
      if (db.inTransaction) db.exec('ROLLBACK');
      return { details: { schemas } };
    },

    async [Symbol.asyncDispose]() {
      if (db.open) {
        if (db.inTransaction) db.exec('ROLLBACK');
        db.close();
      }
    },
  };
}

export function assertExists(file: string, key: string, instance: string): void {
  if (!existsSync(file)) {
    throw new EbrError('connect', `the SQLite database ${file} does not exist`, {
      hint: `check ${key} of instance ${instance} in the config`,
      context: { instance, path: file },
    });
  }
}
