/**
 * Loading the config must not load every adapter's driver: a command loads the native modules it
 * uses and no others. The CLI runs under an import tracer that records every module it resolves.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, tempDir } from '../helpers/env.js';

const drivers = ['better-sqlite3', 'pg', 'mysql2', 'oracledb', 'mssql', 'tedious', 'zstd-napi', 'lz4-napi', 'archiver', '@aws-sdk'];

function loadedPackages(trace: string): Set<string> {
  const out = new Set<string>();
  for (const url of readFileSync(trace, 'utf8').split('\n')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) out.add(m[1]!.startsWith('@aws-sdk/') ? '@aws-sdk' : m[1]!);
  }
  return out;
}

describe('drivers load by name, when used', () => {
  const t = tempDir('ebr-lazy-');
  afterAll(() => t.cleanup());
  const config = path.join(t.dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${t.dir}/catalog.db`,
      'instances:',
      '  pg:',
      '    adapter: postgres',
      '    postgres: { host: /nonexistent, port: 5432, user: postgres }',
      `    target: { type: dir, path: ${t.dir}/archive }`,
      '  shop:',
      '    adapter: sqlite',
      `    sqlite: { main: ${t.dir}/shop.db }`,
      `    target: { type: dir, path: ${t.dir}/archive }`,
    ].join('\n') + '\n',
  );
  const traced = async (name: string, args: string[]) => {
    const trace = path.join(t.dir, `${name}.trace`);
    writeFileSync(trace, '');
    const r = await runEbr(['--config', config, ...args], { env: { ...process.env, EBR_TRACE_IMPORTS: trace, NODE_OPTIONS: `--import ${path.join(repoRoot, 'test/helpers/trace-imports.mjs')}` } });
    return { r, loaded: loadedPackages(trace) };
  };

  it('`ebr wal get` (restore_command) loads no driver, no catalog, no codec', async () => {
    const { r, loaded } = await traced('wal-get', ['wal', 'get', '--instance', 'pg', '000000010000000000000001', path.join(t.dir, 'seg')]);
    expect(r.code, r.stderr).toBe(1); // not in the archive: the answer restore_command expects
    expect(loaded.has('commander'), 'the tracer saw the CLI load').toBe(true);
    expect(drivers.filter((d) => loaded.has(d))).toEqual([]);
  });

  it('`ebr list` opens the catalog (better-sqlite3) and loads no database driver', async () => {
    const { r, loaded } = await traced('list', ['list']);
    expect(r.code, r.stderr).toBe(0);
    expect(loaded.has('better-sqlite3')).toBe(true);
    expect(['pg', 'mysql2', 'oracledb', 'mssql', 'tedious'].filter((d) => loaded.has(d))).toEqual([]);
  });
});
