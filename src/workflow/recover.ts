/**
 * Run at the start of every command: a block whose owner died is ended by its release command, a
 * backup whose runner died is marked failed with the phase it died in, and whatever snapshot resources
 * the journal shows unreleased are removed — those, and nothing else.
 */
import { failAbandonedBackups } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { journalResourceRemoved } from '../catalog/resources.js';
import { snapshotProviders } from '../snapshot/index.js';
import { recoverRestores, type RecoveredRestore } from './restore-recover.js';
import { removeLeftoverArchives } from './archive-journal.js';
import { repairUnfinishedBlocks, watchdogDirFor } from './watchdog.js';

export interface RecoveryReport {
  failedBackups: Array<{ id: string; instance: string; phase: string }>;
  /** Restores whose process died: completed or rolled back, with a sentence for stderr each. */
  restores: RecoveredRestore[];
  removedResources: string[];
  problems: string[];
}

export async function recoverAfterCrash(cat: Catalog): Promise<RecoveryReport> {
  const removedResources: string[] = [];
  const problems: string[] = [];
  // First end any block that outlived its ebr process (the DBMS must not stay blocked), then the bookkeeping.
  const blocks = await repairUnfinishedBlocks(watchdogDirFor(cat.file));
  for (const b of blocks.released) removedResources.push(`block of backup ${b.backupId}${b.instance ? ` (${b.instance})` : ''}, ended by its release command`);
  for (const b of blocks.failed) problems.push(`the block of backup ${b.backupId}${b.instance ? ` (${b.instance})` : ''} is still on: its release command exited ${b.exitCode}: ${b.output.trim().slice(0, 200)}; end it by hand`);
  const failedBackups = failAbandonedBackups(cat);
  // Before anything else touches the instance's files: a restore cut short is finished or undone.
  const restores = await recoverRestores(cat);
  // Partial archives of dead backups first; what is left are snapshot resources.
  for (const r of await removeLeftoverArchives(cat, { removedResources, problems })) {
    const make = snapshotProviders[r.provider];
    if (!make) {
      problems.push(`cannot remove ${r.kind} ${r.path}: snapshot provider ${r.provider} is unknown to this ebr`);
      continue;
    }
    try {
      await make({ provider: r.provider }).removeLeftover(r);
      journalResourceRemoved(cat, r.backupId, r);
      removedResources.push(`${r.kind} ${r.path} (backup ${r.backupId})`);
    } catch (err) {
      problems.push(`cannot remove ${r.kind} ${r.path} left by backup ${r.backupId}: ${(err as Error).message}`);
    }
  }
  return { failedBackups, restores, removedResources, problems };
}
