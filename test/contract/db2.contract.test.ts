/**
 * The adapter contract for Db2, against the documented stand-ins of the `db2` command line processor
 * and `db2inidb` (test/db2/double): no Db2 server runs on these machines. Released means the database
 * is not write suspended (SUSPEND_IO = NO) and every SET WRITE SUSPEND had its resume.
 */
import path from 'node:path';
import { tempDir } from '../helpers/env.js';
import { startDb2Double } from '../db2/double/index.js';
import { describeAdapterContract } from './kit.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

describeAdapterContract('db2', async () => {
  const t = tempDir('ebr-contract-db2-');
  const db = startDb2Double(path.join(t.dir, 'db'));
  const configFile = writeInstanceConfig(t.dir, 'sample', db.instanceYaml);
  return {
    configFile,
    env: db.env,
    async assertReleased() {
      const s = db.state();
      if (s.suspendIo !== 'NO') throw new Error(`database ${s.database} is still write suspended (SUSPEND_IO = ${s.suspendIo})`);
      const suspends = db.calls().filter((c) => /^SET WRITE SUSPEND/.test(c.command)).length;
      const resumes = db.calls().filter((c) => /^(SET WRITE RESUME|RESTART DATABASE \S+ WRITE RESUME)/.test(c.command)).length;
      if (suspends !== resumes) throw new Error(`${suspends} SET WRITE SUSPEND but ${resumes} resume(s)`);
    },
    cleanup: () => {
      db.cleanup();
      t.cleanup();
    },
  };
});
