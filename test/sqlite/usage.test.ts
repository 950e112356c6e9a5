/** Bad input gets a clear message naming the problem and the fix, exit code 2, and never a stack trace. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { makeInstance, type TestInstance } from './sqlite-instance.js';

describe('cli: bad input', () => {
  const t = tempDir();
  let inst: TestInstance;
  beforeAll(async () => {
    inst = makeInstance(t.dir, { sqliteCatalog: true });
    const b = await runEbr(['--config', inst.config, 'backup']);
    expect(b.code, b.stderr).toBe(0);
  });
  afterAll(() => t.cleanup());

  const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);

  function configWith(name: string, body: string): string {
    const f = path.join(t.dir, name);
    writeFileSync(f, body);
    return f;
  }
  const base = (extra: string) => `catalog: ./var/catalog.db\ninstances:\n  t:\n    adapter: sqlite\n    sqlite: { main: ./main.db }\n    target: { type: tar, path: ./var/backups }\n${extra}`;

  it.each([
    ['an unknown snapshot provider', base('    snapshot: { provider: floppy }\n'), /instances\.t\.snapshot\.provider is "floppy"/, /must be one of copy, reflink/],
    ['an unknown key', base('    maxBlokMs: 5\n'), /unknown key instances\.t\.maxBlokMs/, /takes: adapter, snapshot/],
    ['an unknown target key', 'instances:\n  t:\n    adapter: sqlite\n    sqlite: { main: ./main.db }\n    target: { type: tar, path: ./b, compresion: zstd }\n', /unknown key instances\.t\.target\.compresion; a tar target takes: type, path/, /hint: remove compresion/],
    ['an unknown snapshot key', base('    snapshot: { provider: copy, stagin: ./s }\n'), /unknown key instances\.t\.snapshot\.stagin; a copy snapshot takes: provider, staging/, /hint: did you mean staging\?/],
    ['a bad value', base('    maxBlockMs: -5\n'), /instances\.t\.maxBlockMs is -5/, /hint: instances\.t\.maxBlockMs/],
    ['an unknown adapter', 'instances:\n  t:\n    adapter: dbase\n    target: { type: tar, path: x }\n', /instances\.t\.adapter is "dbase"/, /one of sqlite/],
    ['a missing adapter key', 'instances:\n  t:\n    adapter: sqlite\n    target: { type: tar, path: x }\n', /instances\.t\.sqlite is missing/, /connection settings under the key sqlite/],
    ['an unset environment variable', base('    schedule: "${EBR_TEST_SURELY_UNSET}"\n'), /instances\.t\.schedule refers to \$\{EBR_TEST_SURELY_UNSET\}/, /export EBR_TEST_SURELY_UNSET/],
    ['broken YAML', 'instances: [\n', /is not valid YAML/, /fix the YAML syntax/],
  ])('%s: exit 2 naming the key and the fix', async (_what, body, message, hint) => {
    const r = await runEbr(['--config', configWith(`bad-${Math.random()}.yaml`, body), 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(hint);
    noStack(r.stderr);
  });

  it('a missing config file says how to make one', async () => {
    const r = await runEbr(['list'], { cwd: t.dir, env: { EBR_CONFIG: path.join(t.dir, 'nope.yaml') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no config file at .*nope\.yaml/);
    expect(r.stderr).toMatch(/ebr init/);
  });

  it('an unknown space is refused with the list of known spaces', async () => {
    const r = await runEbr(['--config', inst.config, 'restore', '--partial', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/has no space named nosuch/);
    expect(r.stderr).toMatch(/hint: known spaces: main, side, notes/);
    noStack(r.stderr);
  });

  it('a critical space is refused, saying it is critical', async () => {
    const r = await runEbr(['--config', inst.config, 'restore', '--partial', 'main']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/space main is critical/);
    expect(r.stderr).toMatch(/name only non-critical spaces: (side, notes|notes, side)/);
  });

  it('an unknown backup id lists recent ones', async () => {
    const r = await runEbr(['--config', inst.config, 'show', '20990101T000000Z-ffff']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no backup 20990101T000000Z-ffff/);
    expect(r.stderr).toMatch(/recent backups: \d{8}T/);
  });

  it('--until is refused for an adapter without roll-forward', async () => {
    const r = await runEbr(['--config', inst.config, 'restore', '--until', '2026-01-01 00:00:00', '--to', path.join(t.dir, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot roll forward to a point in time/);
  });

  it('an unknown command or option is a usage error with exit 2', async () => {
    const a = await runEbr(['--config', inst.config, 'bakup']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/unknown command 'bakup'/);
    const b = await runEbr(['--config', inst.config, 'backup', '--instanse', 't']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/unknown option '--instanse'/);
  });

  it('--json prints one JSON document on stdout, also for errors', async () => {
    const ok = await runEbr(['--config', inst.config, '--json', 'list']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveLength(1);
    const bad = await runEbr(['--config', inst.config, '--json', 'restore', '--partial', 'main']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe('criticalSpace');
  });

  it('help reads well for the program and each command', async () => {
    const h = await runEbr(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['init', 'demo', 'spaces', 'backup', 'list', 'show', 'verify', 'restore']) expect(h.stdout).toContain(c);
    const r = await runEbr(['restore', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--partial <space\.\.\.>/);
    expect(r.stdout).toMatch(/--until <time>/);
  });

  it('spaces lists the spaces with their critical flag and chunks', async () => {
    const r = await runEbr(['--config', inst.config, '--json', 'spaces']);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.spaces.map((s: { name: string; critical: boolean }) => [s.name, s.critical])).toEqual([
      ['main', true],
      ['side', false],
      ['notes', false],
    ]);
    expect(d.spaces[0].chunks[0].name).toBe('main.db');
  });

  it('init writes a starter config that validates, and does not overwrite', async () => {
    const f = path.join(t.dir, 'starter.yaml');
    expect((await runEbr(['--config', f, 'init'])).code).toBe(0);
    const again = await runEbr(['--config', f, 'init']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    // The starter names files that do not exist yet: it parses, and spaces then says which file is missing.
    const s = await runEbr(['--config', f, 'spaces']);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/the SQLite database .*shop\.db does not exist/);
    expect(s.stderr).toMatch(/check instances\.shop\.sqlite\.main/);
  });
});

describe('cli: two backups of one instance', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  it('never overlap: the second is refused while the first holds the lock', async () => {
    const inst = makeInstance(t.dir, { sqliteCatalog: true });
    const first = runEbr(['--config', inst.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '4000' } });
    await new Promise((r) => setTimeout(r, 1500));
    const second = await runEbr(['--config', inst.config, 'backup']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/backup \S+ of instance t is still running \(pid \d+/);
    expect((await first).code).toBe(0);
    const third = await runEbr(['--config', inst.config, 'backup']);
    expect(third.code, third.stderr).toBe(0);
  });
});
