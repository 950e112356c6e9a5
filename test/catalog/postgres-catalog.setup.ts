/**
 * globalSetup of vitest.postgres.config.ts: one PostgreSQL server for the whole run, named to the test
 * helpers by EBR_TEST_CATALOG=postgres and EBR_TEST_CATALOG_URL; each config they write gets a new
 * database on it (test/helpers/config-file.ts catalogFor).
 */
import { startCatalogServer, type CatalogServer } from './catalog-server.js';

let server: CatalogServer | undefined;

export async function setup(): Promise<void> {
  server = await startCatalogServer();
  process.env.EBR_TEST_CATALOG = 'postgres';
  process.env.EBR_TEST_CATALOG_URL = server.urlOf('postgres');
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
