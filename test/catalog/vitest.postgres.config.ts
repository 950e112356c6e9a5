/**
 * The test suite with the catalog on PostgreSQL: `npx vitest run -c test/catalog/vitest.postgres.config.ts <files>`.
 * The same tests as vitest.config.ts; a PostgreSQL server is started for the run and every config the
 * helpers write points its catalog: at a new database on it.
 */
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default mergeConfig(base, defineConfig({ test: { globalSetup: ['test/catalog/postgres-catalog.setup.ts'] } }));
