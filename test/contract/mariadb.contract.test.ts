/** The adapter contract against a real MariaDB server. */
import { tempDir } from '../helpers/env.js';
import { writeConfig } from '../mariadb/mariadb-instance.js';
import { createServer } from '../mariadb/server.js';
import { describeAdapterContract } from './kit.js';

describeAdapterContract('mariadb', async () => {
  const server = await createServer();
  const t = tempDir('ebr-contract-mdb-');
  await server.query('CREATE DATABASE shop');
  await server.query('CREATE TABLE shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
  const setup = writeConfig(t.dir, server);
  return {
    configFile: setup.config,
    async assertReleased() {
      // BACKUP STAGE BLOCK_COMMIT still held would make this commit wait, and fail after 3 s.
      const conn = await server.connect();
      try {
        await conn.query('SET SESSION lock_wait_timeout = 3, SESSION innodb_lock_wait_timeout = 3');
        await conn.query("INSERT INTO shop.t (v) VALUES ('probe')");
        const [rows] = await conn.query("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE STATE LIKE '%backup%' OR INFO LIKE 'BACKUP STAGE%'");
        const n = Number((rows as Array<{ n: number }>)[0]?.n ?? 0);
        if (n > 0) throw new Error(`${n} session(s) still in a backup stage`);
      } finally {
        await conn.end();
      }
    },
    async cleanup() {
      await server.cleanup();
      t.cleanup();
    },
  };
});
