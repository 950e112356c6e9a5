/** The adapter contract against real SQLite files. */
import path from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers/env.js';
import { describeAdapterContract } from './kit.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

describeAdapterContract('sqlite', async () => {
  const t = tempDir('ebr-contract-sqlite-');
  const main = path.join(t.dir, 'shop.db');
  const sales = path.join(t.dir, 'sales.db');
  for (const file of [main, sales]) {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES (\'one\'), (\'two\');');
    db.close();
  }
  const configFile = writeInstanceConfig(t.dir, 'shop', ['    adapter: sqlite', `    sqlite: { main: ${main}, attach: { sales: ${sales} } }`]);
  return {
    configFile,
    async assertReleased() {
      // No wait: a write lock still held by the window would fail this at once (SQLITE_BUSY).
      const db = new Database(main, { timeout: 0 });
      try {
        db.exec("BEGIN IMMEDIATE; INSERT INTO t (v) VALUES ('probe'); COMMIT;");
      } finally {
        db.close();
      }
    },
    cleanup: () => t.cleanup(),
  };
});
