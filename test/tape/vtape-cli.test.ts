/**
 * The vtape target through the CLI, end to end on a real SQLite instance whose main database is
 * bigger than a cartridge: backup spans cartridges, verify reads every tape file back, restore --to
 * gives the databases back byte for byte. Needs the built CLI (`npm run build`).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { integrity, makeInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-vtape-cli-');
afterAll(() => t.cleanup());
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const MiB = 1 << 20;

describe('vtape through the CLI', () => {
  it('backs up a database bigger than a cartridge onto several, verifies it and restores it byte for byte', async () => {
    const inst = makeInstance(path.join(t.dir, 'i'), { padMiB: 12 });
    expect(statSync(inst.main).size).toBeGreaterThan(8 * MiB);
    // The helper writes a tar target; this instance's target is a vtape library of 8 MiB cartridges.
    const yaml = readFileSync(inst.config, 'utf8');
    const vtapeLine = '    target: { type: vtape, path: ./var/vtapes, capacity: 8MiB }';
    writeFileSync(inst.config, yaml.replace(/^ {4}target: .*$/m, vtapeLine));
    expect(readFileSync(inst.config, 'utf8')).toContain(vtapeLine);
    const ebr = (...args: string[]) => runEbr(['--config', inst.config, ...args]);

    const b = await ebr('--json', 'backup');
    expect(b.code, b.stderr).toBe(0);
    const { backupId, location } = JSON.parse(b.stdout) as { backupId: string; location: string };
    const lib = path.join(inst.dir, 'var/vtapes');
    const carts = readdirSync(lib).filter((c) => c.startsWith('cart-')).sort();
    expect(carts.length).toBeGreaterThanOrEqual(2);
    expect(location).toBe(`vtape:${lib} (${carts[0]}…${carts.at(-1)})`);
    for (const c of carts) {
      const used = readdirSync(path.join(lib, c)).reduce((a, f) => a + statSync(path.join(lib, c, f)).size, 0);
      expect(used, c).toBeLessThanOrEqual(8 * MiB);
    }

    const show = await ebr('--json', 'show', backupId);
    expect(show.code, show.stderr).toBe(0);
    const shown = JSON.parse(show.stdout) as { spaces: Array<{ name: string; placement?: { medium: string; segments: Array<{ volume: number }> } }> };
    const main = shown.spaces.find((s) => s.name === 'main')!;
    expect(main.placement?.medium).toBe('vtape');
    expect(new Set(main.placement!.segments.map((s) => s.volume)).size).toBeGreaterThanOrEqual(2);

    const v = await ebr('verify', 'latest');
    expect(v.code, v.stderr + v.stdout).toBe(0);

    const into = path.join(inst.dir, 'restored');
    const r = await ebr('restore', '--to', into);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const f of [inst.main, inst.side, inst.notes]) expect(sha(path.join(into, path.basename(f))), f).toBe(sha(f));
    expect(integrity(path.join(into, 'main.db'))).toBe('ok');

    // A partial restore seeks to its space's tape file; the catalog's record of the space says where.
    const only = path.join(inst.dir, 'only-notes');
    const p = await ebr('restore', '--partial', 'notes', '--to', only);
    expect(p.code, p.stderr + p.stdout).toBe(0);
    expect(readdirSync(only)).toEqual(['notes.db']);
    expect(sha(path.join(only, 'notes.db'))).toBe(sha(inst.notes));
  });
});
