/** The adapter contract against a real PostgreSQL cluster that archives into ebr's log archive. */
import { postgresTempDir, archivingCluster } from '../postgres/cluster.js';
import { describeAdapterContract } from './kit.js';

describeAdapterContract('postgres', async () => {
  const t = postgresTempDir('ebr-contract-pg-');
  const { cluster, setup } = await archivingCluster(t.dir);
  await cluster.query('CREATE DATABASE shop');
  await cluster.query('CREATE TABLE t (id serial PRIMARY KEY, v text)', [], 'shop');
  return {
    configFile: setup.config,
    async assertReleased() {
      // A backup left running on a session of ebr's would show here (its application_name is "ebr <instance>").
      const left = await cluster.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name LIKE 'ebr %'");
      if (left[0]?.n !== '0') throw new Error(`${left[0]?.n} ebr session(s) still connected`);
      await cluster.query("INSERT INTO t (v) VALUES ('probe')", [], 'shop');
    },
    async cleanup() {
      await cluster.stop('immediate').catch(() => undefined);
      t.cleanup();
    },
  };
});
