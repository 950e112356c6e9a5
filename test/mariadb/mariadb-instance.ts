/** An ebr config around a test server, and the checks the end-to-end tests share. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { runEbr, type RunResult } from '../helpers/env.js';
import { catalogFor } from '../helpers/config-file.js';
import { createServer, type TestServer } from './server.js';

export interface EbrSetup {
  config: string;
  dir: string;
  ebr(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Runs ebr with --json, fails on a non-zero exit, and returns the document. */
  ebrJson<T = Record<string, unknown>>(args: string[]): Promise<T>;
}

export function writeConfig(dir: string, server: TestServer, snapshot: Record<string, unknown> = { provider: 'copy' }, instance = 'mdb'): EbrSetup {
  const config = path.join(dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${catalogFor(path.join(dir, 'var/catalog.db'))}`,
      'instances:',
      `  ${instance}:`,
      '    adapter: mariadb',
      `    mariadb: { socket: ${server.socket}, user: root, scratchDir: ${path.join(dir, 'scratch')}, tempServerBufferPool: 64M }`,
      `    snapshot: ${JSON.stringify(snapshot)}`,
      `    target: { type: dir, path: ${path.join(dir, 'backups')} }`,
      '    maxBlockMs: 20000',
      '',
    ].join('\n'),
  );
  const ebr = (args: string[], timeoutMs = 180_000) => runEbr(['--config', config, ...args], { timeoutMs });
  return {
    config,
    dir,
    ebr,
    async ebrJson<T>(args: string[]) {
      const r = await ebr(['--json', ...args]);
      if (r.code !== 0) throw new Error(`ebr ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
      return JSON.parse(r.stdout) as T;
    },
  };
}

/** Starts a server on a restored data directory (as the DBA would), runs fn, stops it. */
export async function withRestoredServer<T>(datadir: string, fn: (s: TestServer) => Promise<T>): Promise<T> {
  const s = await createServer({ datadir });
  try {
    return await fn(s);
  } finally {
    await s.stop();
  }
}

export async function sumOfBalances(s: TestServer): Promise<{ n: number; total: number }> {
  const [r] = await s.query<{ n: number; total: string }>('SELECT COUNT(*) AS n, SUM(balance) AS total FROM shop.accounts');
  return { n: Number(r!.n), total: Number(r!.total) };
}
