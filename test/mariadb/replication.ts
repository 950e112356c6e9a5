/** A MariaDB primary and a replica replicating from it (GTID, slave_pos), for the split-mirror test and benchmark. */
import { waitFor } from '../helpers/env.js';
import { createServer, type TestServer } from './server.js';

/** Starts both, runs `seed` on the primary, and waits until `caughtUp` holds on the replica. */
export async function replicaPair(seed: (primary: TestServer) => Promise<void>, caughtUp: (replica: TestServer) => Promise<boolean>, timeoutMs = 60_000): Promise<{ primary: TestServer; replica: TestServer }> {
  const primary = await createServer();
  const replica = await createServer({ args: ['--server-id=2'] });
  await primary.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'");
  await primary.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
  await seed(primary);
  await replica.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos`);
  await replica.query('START SLAVE');
  await waitFor('the replica to catch up', async () => ((await caughtUp(replica).catch(() => false)) ? true : undefined), timeoutMs, 100);
  return { primary, replica };
}
