/** An ebr.yaml with one instance, its catalog, copy snapshots and archive all under `dir`. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The catalog a test config names: the SQLite file given, or under EBR_TEST_CATALOG=postgres (see
 * test/catalog/vitest.postgres.config.ts) a new database on the server EBR_TEST_CATALOG_URL names.
 */
export function catalogFor(sqliteFile: string): string {
  if (process.env.EBR_TEST_CATALOG !== 'postgres') return sqliteFile;
  const url = process.env.EBR_TEST_CATALOG_URL;
  if (!url) throw new Error('EBR_TEST_CATALOG=postgres needs EBR_TEST_CATALOG_URL (run with -c test/catalog/vitest.postgres.config.ts)');
  const db = `ebr_t_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url, '-c', `CREATE DATABASE ${db}`], { stdio: 'pipe' });
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export function writeInstanceConfig(dir: string, instance: string, adapterLines: string | string[], o: { target?: 'dir' | 'tar'; maxBlockMs?: number } = {}): string {
  const file = path.join(dir, 'ebr.yaml');
  writeFileSync(
    file,
    [
      `catalog: ${catalogFor(path.join(dir, 'catalog.db'))}`,
      'instances:',
      `  ${instance}:`,
      ...(Array.isArray(adapterLines) ? adapterLines : [adapterLines]),
      `    snapshot: { provider: copy, staging: ${path.join(dir, 'staging')} }`,
      `    target: { type: ${o.target ?? 'dir'}, path: ${path.join(dir, 'backups')} }`,
      ...(o.maxBlockMs !== undefined ? [`    maxBlockMs: ${o.maxBlockMs}`] : []),
      '',
    ].join('\n'),
  );
  return file;
}
