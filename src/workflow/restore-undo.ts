/**
 * Undo and commit of a restore's journal, used by the restore itself on failure and by the next
 * command after a crash. Each step reads the file system to see how far it got, so either can run
 * again after being cut short.
 */
import { lchown, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes } from '../adapter-api.js';
import { syncDir } from '../archive/backup-dir.js';
import type { JournalRow } from '../catalog/restores.js';
import { faultPoint } from '../util/fault.js';
import { runnerIsDead, thisRunner } from '../util/runner.js';
import { exists, isRoot, setNoFollow } from './no-follow.js';
import { undoPlaceRange, type RangeStep } from './restore-range.js';

/**
 * Undoes journaled steps newest first. Each step looks at the file system to see how far it got, so
 * running this twice, or after a crash inside it, is safe. Returns the problems it could not fix.
 */
export async function undoJournal(rows: JournalRow[]): Promise<string[]> {
  const problems: string[] = [];
  // Directories the restore made go last, once everything put into them is gone.
  // Processes the restore started on the files first: nothing is put back under a running server.
  const ordered = [...rows.filter((r) => r.op === 'process'), ...rows.filter((r) => r.op !== 'mkdir' && r.op !== 'process').reverse(), ...rows.filter((r) => r.op === 'mkdir').reverse()];
  // Entries the journal itself accounts for are never "new" to a tracked directory: undoing a set-aside
  // may already have put an old entry back under a name the directory did not hold when it was tracked.
  const known = new Set(rows.flatMap((r) => [r.path, r.details.aside, r.details.temp, r.details.saved].filter((x): x is string => typeof x === 'string')));
  for (const r of ordered) {
    try {
      await undoStep(r, known);
    } catch (err) {
      problems.push(`${r.op} ${r.path}: ${(err as Error).message}`);
    }
  }
  return problems;
}

async function undoStep(r: JournalRow, known: Set<string>): Promise<void> {
  const d = r.details;
  switch (r.op) {
    case 'stage':
      await rm(d.temp as string, { force: true });
      return;
    case 'place': {
      const temp = d.temp as string;
      const aside = d.aside as string | null;
      const newNotPlaced = await exists(temp);
      if (newNotPlaced) await rm(temp, { force: true });
      if (aside) {
        if (!(await exists(aside))) return; // the old file was never moved
        if (!newNotPlaced) await rm(r.path, { recursive: true, force: true });
        await rename(aside, r.path);
      } else if (!newNotPlaced) {
        await rm(r.path, { recursive: true, force: true });
      }
      return;
    }
    case 'place-range':
      await undoPlaceRange(r.path, d as unknown as RangeStep);
      return;
    case 'place-side': {
      const aside = d.aside as string | null;
      if (aside && !(await exists(aside))) return;
      await rm(r.path, { recursive: true, force: true });
      if (aside) await rename(aside, r.path);
      return;
    }
    case 'aside': {
      const aside = d.aside as string;
      if (!(await exists(aside))) return;
      await rm(r.path, { recursive: true, force: true });
      await rename(aside, r.path);
      return;
    }
    case 'mkdir':
      await rmdir(r.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT' && err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
      return;
    case 'attrs': {
      const before = d.before as FileAttributes;
      if (!(await exists(r.path))) return;
      if (d.link) {
        if (isRoot() && before.uid !== undefined && before.gid !== undefined) await lchown(r.path, before.uid, before.gid);
      } else await setNoFollow(r.path, before);
      return;
    }
    case 'track': {
      const keep = new Set(d.names as string[]);
      for (const name of await readdir(r.path).catch(() => [] as string[])) {
        const p = path.join(r.path, name);
        if (!keep.has(name) && !known.has(p)) await rm(p, { recursive: true, force: true });
      }
      return;
    }
    case 'process': {
      const runner = { host: thisRunner().host, pid: d.pid as number, start: d.start as string };
      if (runnerIsDead(runner)) return;
      process.kill(runner.pid, 'SIGKILL');
      for (let i = 0; i < 200 && !runnerIsDead(runner); i++) await new Promise((res) => setTimeout(res, 50));
      if (!runnerIsDead(runner)) throw new Error(`process ${runner.pid} that the restore started does not end`);
      return;
    }
    default:
      throw new Error(`unknown journal step ${r.op}`);
  }
}

/** Removes what was set aside (not what was kept for the user); returns the kept paths. */
export async function commitJournal(rows: JournalRow[]): Promise<string[]> {
  const kept: string[] = [];
  for (const r of rows) {
    if (r.op === 'place-range') {
      // The range is written; its old bytes (and a temp a crash left) are no longer needed.
      for (const p of [r.details.saved, r.details.temp]) if (typeof p === 'string') await rm(p, { force: true });
      faultPoint('cleanup');
      continue;
    }
    const aside = r.details.aside as string | null | undefined;
    if (!aside || (r.op !== 'place' && r.op !== 'place-side' && r.op !== 'aside')) continue;
    if (r.details.keep) kept.push(aside);
    else await rm(aside, { recursive: true, force: true });
    faultPoint('cleanup');
  }
  for (const d of new Set(rows.filter((r) => r.op === 'place').map((r) => path.dirname(r.path)))) await syncDir(d).catch(() => undefined);
  return kept;
}

