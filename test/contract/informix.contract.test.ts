/**
 * The adapter contract for Informix, against the documented stand-ins of onstat, onmode and onbar
 * (test/informix/double): no Informix server runs on these machines. Released means the server is not
 * blocked (onstat's header shows no Blocked:ARCHIVE…) and every onmode -c block had its unblock.
 */
import path from 'node:path';
import { tempDir } from '../helpers/env.js';
import { startInformixDouble } from '../informix/double/index.js';
import { describeAdapterContract } from './kit.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

describeAdapterContract('informix', async () => {
  const t = tempDir('ebr-contract-ifx-');
  const db = startInformixDouble(path.join(t.dir, 'db'));
  const configFile = writeInstanceConfig(t.dir, 'ids', db.instanceYaml);
  return {
    configFile,
    env: db.env,
    async assertReleased() {
      const s = db.state();
      if (s.blocked) throw new Error(`server ${s.server} is still blocked (onmode -c block without its unblock)`);
      if ((s.blocks ?? 0) !== s.unblocks) throw new Error(`${s.blocks ?? 0} onmode -c block run(s) but ${s.unblocks} unblock(s)`);
    },
    cleanup: () => {
      db.cleanup();
      t.cleanup();
    },
  };
});
