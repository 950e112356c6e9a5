/**
 * Run at the start of every command: a backup whose runner died is marked failed with the phase it
 * died in, and whatever snapshot resources the journal shows unreleased are removed — those, and nothing else.
 */
import { failAbandonedBackups } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { journalResourceRemoved, leftoverResources } from '../catalog/resources.js';
import { snapshotProviders } from '../snapshot/index.js';

export interface RecoveryReport {
  failedBackups: Array<{ id: string; instance: string; phase: string }>;
  removedResources: string[];
  problems: string[];
}

export async function recoverAfterCrash(cat: Catalog): Promise<RecoveryReport> {
  const failedBackups = failAbandonedBackups(cat);
  const removedResources: string[] = [];
  const problems: string[] = [];
  for (const r of leftoverResources(cat)) {
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
  return { failedBackups, removedResources, problems };
}
