/** `ebr wal push` and `ebr wal get` as PostgreSQL runs them: exit codes, quiet success, quiet "not found", loud conflicts. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebrBin, runEbr, tempDir } from '../helpers/env.js';

const tmp = tempDir('ebr-wal-cli-');
const config = path.join(tmp.dir, 'ebr.yaml');
const walDir = path.join(tmp.dir, 'pgdata', 'pg_wal');
const segment = '000000010000000000000003';
const ebr = (args: string[], cwd = path.join(tmp.dir, 'pgdata')) => runEbr(['--config', config, ...args], { cwd });

beforeAll(() => {
  if (!existsSync(ebrBin)) throw new Error(`${ebrBin} is missing: run \`npx tsc -p .\` before these tests`);
  writeFileSync(
    config,
    [
      `catalog: ${tmp.dir}/catalog.db`,
      'instances:',
      '  pg:',
      '    adapter: postgres',
      '    postgres: { host: /nowhere, port: 5432 }',
      `    target: { type: dir, path: ${tmp.dir}/backups }`,
      '  lite:',
      '    adapter: sqlite',
      `    sqlite: { main: ${tmp.dir}/x.db }`,
      `    target: { type: dir, path: ${tmp.dir}/backups }`,
      '',
    ].join('\n'),
  );
  mkdirSync(walDir, { recursive: true });
  writeFileSync(path.join(walDir, segment), Buffer.alloc(1 << 20, 3));
});
afterAll(() => tmp.cleanup());

describe('ebr wal', () => {
  it('push stores a segment given as %p relative to the data directory, quietly', async () => {
    const r = await ebr(['wal', 'push', '--instance', 'pg', `pg_wal/${segment}`]);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(path.join(tmp.dir, 'backups', 'pg', 'wal', segment)).equals(readFileSync(path.join(walDir, segment)))).toBe(true);
  });

  it('push of the same segment again succeeds; different bytes under its name fail loudly', async () => {
    expect((await ebr(['wal', 'push', '--instance', 'pg', `pg_wal/${segment}`])).code).toBe(0);
    const other = path.join(tmp.dir, 'other', segment);
    mkdirSync(path.dirname(other), { recursive: true });
    writeFileSync(other, Buffer.alloc(1 << 20, 4));
    const r = await ebr(['wal', 'push', '--instance', 'pg', other]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds a different 000000010000000000000003/);
    expect(r.stderr).toMatch(/hint: two servers/);
  });

  it('get fetches a segment into %p, digest checked', async () => {
    const r = await ebr(['wal', 'get', '--instance', 'pg', segment, 'pg_wal/RECOVERYXLOG']);
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readFileSync(path.join(walDir, 'RECOVERYXLOG')).equals(readFileSync(path.join(walDir, segment)))).toBe(true);
  });

  it('get of a segment the archive lacks exits non-zero without a word', async () => {
    const r = await ebr(['wal', 'get', '--instance', 'pg', '00000002.history', 'pg_wal/RECOVERYHISTORY']);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: '' });
    expect(existsSync(path.join(walDir, 'RECOVERYHISTORY'))).toBe(false);
  });

  it('get of a damaged segment fails loudly and writes nothing', async () => {
    writeFileSync(path.join(tmp.dir, 'backups', 'pg', 'wal', segment), Buffer.alloc(1 << 20, 9));
    const r = await ebr(['wal', 'get', '--instance', 'pg', segment, 'pg_wal/RECOVERYXLOG2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not match its recorded digest/);
    expect(existsSync(path.join(walDir, 'RECOVERYXLOG2'))).toBe(false);
  });

  it('refuses names that are not WAL files and instances without a WAL archive', async () => {
    writeFileSync(path.join(walDir, 'notes.txt'), 'x');
    const bad = await ebr(['wal', 'push', '--instance', 'pg', 'pg_wal/notes.txt']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/is not the name of a WAL file/);
    const lite = await ebr(['wal', 'push', '--instance', 'lite', `pg_wal/${segment}`]);
    expect(lite.code).toBe(2);
    expect(lite.stderr).toMatch(/keeps no log archive/);
  });
});
