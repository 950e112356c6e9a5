/**
 * The adapter contract for SQL Server, against the documented stand-in (test/mssql/double): no SQL
 * Server runs on these machines. Released means no database is left suspended for a snapshot.
 */
import path from 'node:path';
import { tempDir } from '../helpers/env.js';
import { startMssqlDouble } from '../mssql/double/index.js';
import { describeAdapterContract } from './kit.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

describeAdapterContract('mssql', async () => {
  const t = tempDir('ebr-contract-mssql-');
  const db = startMssqlDouble(t.dir);
  const configFile = writeInstanceConfig(t.dir, 'sql', db.instanceYaml);
  return {
    configFile,
    env: db.env,
    async assertReleased() {
      const suspended = Object.entries(db.state().databases).filter(([, d]) => d.suspendedBy !== null && d.suspendedBy !== undefined);
      if (suspended.length) throw new Error(`database(s) ${suspended.map(([n]) => n).join(', ')} still suspended for a snapshot`);
    },
    cleanup: () => {
      db.cleanup();
      t.cleanup();
    },
  };
});
