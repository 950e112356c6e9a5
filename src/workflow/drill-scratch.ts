/**
 * Where a drill restores to: a fresh directory of its own under the scratch root, journaled in the
 * catalog before it is made, and removed when the drill ends — or by the next drill, with the server
 * a dead drill had started, when the process died (kill -9, power loss).
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { abandonedDrills, markDrillDead } from '../catalog/drills.js';
import { localStateDir, type Catalog } from '../catalog/catalog.js';
import type { Config } from '../config/load.js';

/** The scratch root: --scratch, else the config's drill.scratch, else `drills/` beside the catalog. */
export function scratchRootOf(config: Config, explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  return config.drill?.scratch ?? path.join(localStateDir(config), 'drills');
}

export async function makeScratch(root: string, name: string): Promise<string> {
  await mkdir(root, { recursive: true });
  const dir = await mkdtemp(path.join(root, `${name}-`));
  // Search but not list for others: the DBMS runs as the restored files' owner (postgres, mysql) and
  // must reach the copy below this directory, which ebr (often root) made.
  await chmod(dir, 0o711);
  return dir;
}

export async function removeScratch(dir: string): Promise<boolean> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Drills whose process died: the server they started is ended (only if it still runs on that scratch,
 * so a reused pid is never hit), the scratch removed, the drill marked failed. Returns what was done.
 */
export async function cleanAbandonedDrills(cat: Catalog): Promise<string[]> {
  const done: string[] = [];
  for (const d of abandonedDrills(cat)) {
    if (d.server_pid && commandLineOf(d.server_pid).includes(d.scratch)) {
      try {
        process.kill(d.server_pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const removed = await removeScratch(d.scratch);
    markDrillDead(cat, d.id, `the ebr process running this drill (pid ${d.runner_pid} on ${d.runner_host}) died; its scratch ${d.scratch} was ${removed ? 'removed' : 'not removable'}`);
    done.push(`drill ${d.id} of backup ${d.backup_id} (its process died): scratch ${d.scratch} ${removed ? 'removed' : 'could not be removed'}`);
  }
  return done;
}

function commandLineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
