/**
 * The adapter contract for Oracle, against the documented stand-in (test/oracle/double): no Oracle
 * server runs on these machines. Released means no datafile is left in backup mode (V$BACKUP ACTIVE).
 */
import path from 'node:path';
import { tempDir } from '../helpers/env.js';
import { startOracleDouble } from '../oracle/double/index.js';
import { describeAdapterContract } from './kit.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

describeAdapterContract('oracle', async () => {
  const t = tempDir('ebr-contract-ora-');
  const db = startOracleDouble(path.join(t.dir, 'db'));
  const configFile = writeInstanceConfig(t.dir, 'orcl', db.instanceYaml);
  return {
    configFile,
    env: db.env,
    async assertReleased() {
      const active = Object.entries(db.state().backup).filter(([, b]) => b.status === 'ACTIVE');
      if (active.length) throw new Error(`datafile(s) ${active.map(([f]) => f).join(', ')} still in backup mode`);
    },
    cleanup: () => {
      db.cleanup();
      t.cleanup();
    },
  };
});
