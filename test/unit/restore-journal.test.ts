/**
 * The restore journal: every step undone from the file system's own state, so undo can be cut short
 * (the process killed in the middle of it) and run again; and the guard that keeps writes inside the
 * restore's directories and off links.
 */
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { beginRestore, journalOf } from '../../src/catalog/restores.js';
import { thisRunner } from '../../src/util/runner.js';
import { RestoreJournal } from '../../src/workflow/restore-journal.js';
import { undoJournal } from '../../src/workflow/restore-undo.js';
import { DestinationGuard, checkMemberName } from '../../src/workflow/restore-paths.js';
import { tempDir } from '../helpers/env.js';

const t = tempDir('ebr-journal-');
afterAll(() => t.cleanup());

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = lstatSync(p);
    out[name] = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? `dir ${JSON.stringify(tree(p))}` : `${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }
  return out;
}

async function* bytes(s: string): AsyncGenerator<Buffer> {
  yield Buffer.from(s);
}

/** A restore that stages two files, swaps them in, and rewrites one and sets a directory aside in finish. */
async function restoreSteps(name: string): Promise<{ root: string; cat: Catalog; id: number; before: Record<string, string> }> {
  const root = path.join(t.dir, name);
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  writeFileSync(path.join(root, 'a'), 'old a');
  writeFileSync(path.join(root, 'a-wal'), 'old wal of a');
  writeFileSync(path.join(root, 'sub', 'conf'), 'old conf');
  mkdirSync(path.join(root, 'stray'));
  writeFileSync(path.join(root, 'stray', 'x'), 'made later');
  const before = tree(root);
  const cat = Catalog.open(path.join(t.dir, `${name}.db`));
  const id = beginRestore(cat, { backupId: 'b1', instance: name, mode: 'full', spaces: ['s'], runner: thisRunner() });
  const j = new RestoreJournal(cat, id, new DestinationGuard([root], {}));
  const dests = [path.join(root, 'a'), path.join(root, 'new', 'deep', 'b'), path.join(root, 'sub', 'conf')];
  const temps = j.planTemps(dests);
  for (const d of dests) await j.stageFile(temps.get(d)!, bytes(`new ${path.basename(d)}`), new AbortController().signal, d, { mode: 0o640 });
  await j.swap(dests.map((d) => ({ temp: temps.get(d)!, dest: d, sideFiles: d.endsWith('/a') ? [`${d}-wal`, `${d}-shm`] : [] })));
  await j.writeFile(path.join(root, 'sub', 'conf'), 'rewritten by finish');
  await j.setAside(path.join(root, 'stray'));
  await j.setAttributes(path.join(root, 'sub'), { mode: 0o700 });
  await j.track(root);
  writeFileSync(path.join(root, 'made-by-a-temporary-server'), 'x');
  return { root, cat, id, before };
}

describe('restore journal', () => {
  it('undo puts every old file back, side files and modes included, and removes everything new', async () => {
    const { root, cat, id, before } = await restoreSteps('whole');
    expect(tree(root)).not.toEqual(before);
    expect(await undoJournal(journalOf(cat, id))).toEqual([]);
    expect(tree(root)).toEqual(before);
    cat.close();
  });

  it('undo cut short after any number of steps, then run again, still ends exactly as before', async () => {
    const probe = await restoreSteps('probe');
    const steps = journalOf(probe.cat, probe.id).length;
    probe.cat.close();
    for (let k = 1; k < steps; k++) {
      const { root, cat, id, before } = await restoreSteps(`cut-${k}`);
      const rows = journalOf(cat, id);
      // The first k steps of an undo (newest first) as a killed undo would leave them.
      await undoJournal(rows.slice(rows.length - k));
      expect(await undoJournal(rows)).toEqual([]);
      expect(tree(root), `cut after ${k} of ${steps} steps`).toEqual(before);
      cat.close();
    }
  });
});

describe('destination guard', () => {
  it('refuses names that climb out, absolute names, NUL and empty parts', () => {
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\0b', '']) expect(() => checkMemberName(bad, 's', {}), bad).toThrow(/refuses to restore it/);
    expect(() => checkMemberName('base/1/1234', 's', {})).not.toThrow();
  });

  it('refuses paths outside its roots and paths reached through a link', async () => {
    const root = path.join(t.dir, 'guard');
    mkdirSync(path.join(root, 'real'), { recursive: true });
    symlinkSync('/etc', path.join(root, 'link'));
    const g = new DestinationGuard([root, path.join(root, 'real')], {});
    expect(g.rootDirs).toEqual([root]);
    expect(() => g.rootOf('/etc/passwd')).toThrow(/outside the directories this restore may write/);
    expect(() => g.rootOf(`${root}/../x`)).toThrow(/not a plain absolute path/);
    await expect(g.check(path.join(root, 'link', 'passwd'))).rejects.toThrow(/through the symbolic link/);
    await expect(g.check(path.join(root, 'real', 'new', 'file'))).resolves.toBeUndefined();
  });
});
