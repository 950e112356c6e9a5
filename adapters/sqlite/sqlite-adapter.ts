/** The SQLite adapter: spaces are `main` (critical) and each attached database. */
import Database from 'better-sqlite3';
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { sqliteConfigSchema, type SqliteSettings } from './sqlite-config.js';
import { sqliteRestorer } from './sqlite-restorer.js';
import { assertExists, sqliteSession, type SqliteFiles } from './sqlite-session.js';

export const sqliteAdapter: DbmsAdapter<SqliteSettings> = {
  vendor: 'sqlite',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: false, pointInTimeRestore: false },
  configSchema: sqliteConfigSchema as unknown as DbmsAdapter<SqliteSettings>['configSchema'],

  async connect(instance) {
    const s = instance.settings;
    const files: SqliteFiles = { main: instance.resolvePath(s.main) };
    for (const [name, file] of Object.entries(s.attach)) files[name] = instance.resolvePath(file);
    assertExists(files.main!, `instances.${instance.name}.sqlite.main`, instance.name);
    for (const [name, file] of Object.entries(files)) {
      if (name !== 'main') assertExists(file, `instances.${instance.name}.sqlite.attach.${name}`, instance.name);
    }
    let db: Database.Database;
    try {
      db = new Database(files.main!, { fileMustExist: true });
      db.pragma(`busy_timeout = ${s.busyTimeoutMs}`);
      for (const [name, file] of Object.entries(files)) {
        if (name !== 'main') db.prepare(`ATTACH DATABASE ? AS "${name}"`).run(file);
      }
    } catch (err) {
      throw new EbrError('connect', `cannot open ${files.main}: ${(err as Error).message}`, {
        hint: 'check that the file is a SQLite database and readable by this user',
        context: { instance: instance.name, path: files.main },
        cause: err,
      });
    }
    return sqliteSession(db, files, instance.name);
  },

  async restorer(_instance, plan) {
    return sqliteRestorer(plan);
  },
};
