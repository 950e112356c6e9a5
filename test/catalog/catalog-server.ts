/**
 * A throwaway PostgreSQL server for the catalog tests (and for EBR_TEST_CATALOG=postgres): initdb in a
 * temp dir, a free port, the unix socket in the temp dir, a database `ebr` per catalog.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Cluster, initCluster, postgresTempDir } from '../postgres/cluster.js';

export interface CatalogServer {
  cluster: Cluster;
  dir: string;
  /** The URL of a new, empty catalog database on this server. */
  newCatalog(name?: string): Promise<string>;
  urlOf(db: string, user?: string): string;
  stop(): Promise<void>;
}

let n = 0;

export async function startCatalogServer(): Promise<CatalogServer> {
  const { dir, cleanup } = postgresTempDir('ebr-catalog-pg-');
  const cluster = await initCluster(dir);
  cluster.conf({ max_connections: '100' });
  await cluster.mustStart();
  const urlOf = (db: string, user = 'postgres') => `postgres://${user}@localhost:${cluster.port}/${db}?host=${encodeURIComponent(dir)}`;
  return {
    cluster,
    dir,
    urlOf,
    async newCatalog(name) {
      const db = name ?? `ebr_${process.pid}_${++n}`;
      const c = await cluster.client();
      try {
        await c.query(`CREATE DATABASE ${db}`);
      } finally {
        await c.end();
      }
      return urlOf(db);
    },
    async stop() {
      await cluster.stop('immediate').catch(() => undefined);
      cleanup();
    },
  };
}

/** A small SQLite instance `name` in dir (main.db with a table of n rows) and its ebr.yaml naming `catalog` and the shared repository. */
export function sqliteAgent(dir: string, o: { name: string; catalog: string; repo: string; rows?: number }): { config: string; main: string; staging: string } {
  mkdirSync(dir, { recursive: true });
  const main = path.join(dir, 'main.db');
  const db = new Database(main);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  db.transaction(() => {
    const ins = db.prepare('INSERT INTO ledger (body) VALUES (?)');
    for (let i = 0; i < (o.rows ?? 200); i++) ins.run(`${o.name} row ${i} ${'x'.repeat(100)}`);
  })();
  db.close();
  const staging = path.join(dir, 'staging');
  const config = path.join(dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${o.catalog}`,
      'instances:',
      `  ${o.name}:`,
      '    adapter: sqlite',
      `    sqlite: { main: ${main}, busyTimeoutMs: 10000 }`,
      `    snapshot: { provider: copy, staging: ${staging} }`,
      `    target: { type: dir, path: ${o.repo} }`,
      '    maxBlockMs: 20000',
      '',
    ].join('\n'),
  );
  return { config, main, staging };
}

/** One query on a catalog database (the test's own client, not ebr's). */
export async function pgQuery<T = Record<string, unknown>>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return (await c.query(sql, values)).rows as T[];
  } finally {
    await c.end();
  }
}
