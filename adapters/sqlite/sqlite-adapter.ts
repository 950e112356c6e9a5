/** Opening the SQLite session (loaded only when an instance is backed up: it loads better-sqlite3). */
import Database from 'better-sqlite3';
import type { DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { SqliteSettings } from './sqlite-config.js';
import { assertExists, sqliteSession, type SqliteFiles } from './sqlite-session.js';

export async function connectSqlite(instance: InstanceContext<SqliteSettings>): Promise<DbmsSession> {
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
}
