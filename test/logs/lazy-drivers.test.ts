/**
 * Loading the config must not load every adapter's driver: a command loads the native modules it
 * uses and no others, and the CLI loads the module of the command it runs and no other command's.
 * The CLI runs under an import tracer that records every module it resolves.
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
    return { r, loaded: loadedPackages(trace), resolved: readFileSync(trace, 'utf8').split('\n').filter(Boolean) };
  };

  it('`ebr wal get` (restore_command) loads no driver, no catalog, no codec', async () => {
    const { r, loaded } = await traced('wal-get', ['wal', 'get', '--instance', 'pg', '000000010000000000000001', path.join(t.dir, 'seg')]);
    expect(r.code, r.stderr).toBe(1); // not in the archive: the answer restore_command expects
    expect(loaded.has('commander'), 'the tracer saw the CLI load').toBe(true);
    expect(drivers.filter((d) => loaded.has(d))).toEqual([]);
  });

  it('commands that start no process do not load execa (about 260 modules, 0.2 s of every run)', async () => {
    for (const args of [['wal', 'get', '--instance', 'pg', '000000010000000000000001', path.join(t.dir, 'seg')], ['list'], ['pins']]) {
      const { loaded } = await traced(`no-execa-${args[0]}`, args);
      expect(loaded.has('commander'), 'the tracer saw the CLI load').toBe(true);
      expect(loaded.has('execa'), args.join(' ')).toBe(false);
    }
  });

  it('`ebr wal get` loads the log command alone, not every command and its workflow', async () => {
    const { r, resolved } = await traced('wal-get-modules', ['wal', 'get', '--instance', 'pg', '000000010000000000000001', path.join(t.dir, 'seg')]);
    expect(r.code, r.stderr).toBe(1);
    const commands = new Set(resolved.map((u) => /\/src\/cli\/commands\/([a-z-]+)\.js$/.exec(u)?.[1]).filter(Boolean));
    // log.ts itself imports retention.ts (for purge's lines); no other command module comes in.
    expect([...commands].filter((c) => c !== 'log' && c !== 'retention')).toEqual([]);
    const workflows = ['workflow/backup.js', 'workflow/restore.js', 'workflow/drill.js', 'workflow/export.js', 'workflow/group.js', 'schedule/daemon.js', 'demo/demo-command.js'];
    expect(workflows.filter((w) => resolved.some((u) => u.endsWith(`/${w}`)))).toEqual([]);
    // Every command loaded at start resolved about 1570 modules here, the log command alone about 1150,
    // and about 880 once execa loaded only when a process is started.
    expect(resolved.length).toBeLessThan(1000);
  });

  it('`ebr --help` still lists every command, the log aliases too, and an unknown command is a usage error', async () => {
    const help = await runEbr(['--help']);
    expect(help.code, help.stderr).toBe(0);
    const listed = new Set([...help.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]));
    for (const name of ['init', 'demo', 'spaces', 'backup', 'list', 'show', 'verify', 'export', 'restore', 'restores', 'drill', 'status', 'catalog', 'daemon', 'log', 'wal', 'release', 'retention', 'pin', 'pins', 'unpin']) {
      expect(listed.has(name), name).toBe(true);
    }
    // --help before a command name is still the program's help, listing every command.
    const before = await runEbr(['--config', config, '--help', 'backup']);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/^ {2}restore\b/m);
    const sub = await runEbr(['backup', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/Usage: ebr backup/);
    const unknown = await runEbr(['--config', config, 'bakup']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'bakup'/);
  });

  it('`ebr list` opens the catalog (better-sqlite3) and loads no database driver', async () => {
    const { r, loaded } = await traced('list', ['list']);
    expect(r.code, r.stderr).toBe(0);
    expect(loaded.has('better-sqlite3')).toBe(true);
    expect(['pg', 'mysql2', 'oracledb', 'mssql', 'tedious'].filter((d) => loaded.has(d))).toEqual([]);
  });
});
