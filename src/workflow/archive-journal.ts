/**
 * A backup's archive is journaled like a snapshot: in the catalog's resources journal, before its
 * first byte is written, with what it takes to remove it again — the target's type and settings and
 * the backup it belongs to. A failed backup removes its archive and settles the entry; a complete one
 * settles it in the same transaction that marks it complete (catalog/backups.ts). Whatever entry is
 * left open belongs to a backup whose process died: the next command (recoverAfterCrash, which has
 * nothing but the catalog) removes that archive — unless its manifest made it a whole backup.
 */
import type { ArchiveTarget, BackupRef } from '../archive/archive-target.js';
import { archiveTargets } from '../archive/index.js';
import { archiveResource } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { journalResource, journalResourceRemoved, leftoverResources, type ResourceRow } from '../catalog/resources.js';
import type { TargetSettings } from '../archive/archive-target.js';
import type { SnapshotResource } from '../snapshot/snapshot-provider.js';

/** Settings keys never written to the catalog: a target that needs a secret gets it from the config. */
const secretKey = /pass|secret|token|credential|key/i;

export interface JournaledArchive {
  /** The archive is gone (or was never made): the entry is settled. */
  removed(): void;
}

/** Journals the archive of `ref` on `target` (durably: the entry must be on disk before the archive is). */
export function journalArchive(cat: Catalog, settings: TargetSettings, target: ArchiveTarget, ref: BackupRef): JournaledArchive {
  const kept = Object.fromEntries(Object.entries(settings).filter(([k]) => !secretKey.test(k)));
  const r: SnapshotResource = {
    ...archiveResource,
    path: target.locationOf?.(ref) ?? `${settings.type}:${settings.path}`,
    details: { target: kept, instance: ref.instance, backupId: ref.backupId },
  };
  cat.durableTx(() => journalResource(cat, ref.backupId, r));
  return { removed: () => journalResourceRemoved(cat, ref.backupId, r) };
}

export interface ArchiveRecovery {
  removedResources: string[];
  problems: string[];
}

/**
 * Removes the archives that dead backups left (see the top of this file) and returns the other
 * leftovers of the journal, the snapshot resources, for the caller to remove.
 */
export async function removeLeftoverArchives(cat: Catalog, report: ArchiveRecovery): Promise<ResourceRow[]> {
  const others: ResourceRow[] = [];
  for (const r of leftoverResources(cat)) {
    if (r.provider !== archiveResource.provider || r.kind !== archiveResource.kind) {
      others.push(r);
      continue;
    }
    const d = (r.details ?? {}) as { target?: TargetSettings; instance?: string; backupId?: string };
    const make = d.target ? archiveTargets[d.target.type] : undefined;
    // The path to remove is made from these by the target itself: they must be plain names, never a way out of it.
    if (!d.target || !make || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(d.instance ?? '') || d.backupId !== r.backupId || !/^\d{8}T\d{6}Z-[0-9a-f]+$/.test(r.backupId)) {
      report.problems.push(`cannot remove the archive ${r.path} left by backup ${r.backupId}: ${d.target && !make ? `target type ${d.target.type} is unknown to this ebr` : 'its journal entry is incomplete'}`);
      continue;
    }
    const ref = { instance: d.instance!, backupId: r.backupId };
    try {
      const target = make(d.target);
      const row = cat.db.prepare('SELECT status FROM backups WHERE id = ?').get(r.backupId) as { status: string } | undefined;
      if (row?.status === 'complete') {
        // Settled together with `complete`; an open entry here means an older ebr wrote it. Never remove a complete backup.
        journalResourceRemoved(cat, r.backupId, r);
        continue;
      }
      if (await hasManifest(target, ref)) {
        // It died after the manifest went in, before the catalog said complete: the archive is whole. Keep it.
        journalResourceRemoved(cat, r.backupId, r);
        report.problems.push(`backup ${r.backupId} died after its manifest was written: its archive ${r.path} is whole but the catalog marks it failed; it was kept, remove it by hand if it is not wanted`);
        continue;
      }
      await target.remove(ref);
      journalResourceRemoved(cat, r.backupId, r);
      report.removedResources.push(`partial archive ${r.path} (backup ${r.backupId})`);
    } catch (err) {
      report.problems.push(`cannot remove the partial archive ${r.path} left by backup ${r.backupId}: ${(err as Error).message}`);
    }
  }
  return others;
}

async function hasManifest(target: ArchiveTarget, ref: BackupRef): Promise<boolean> {
  // A tape is not read to tidy up: the partial backup on it is left to be overwritten (its remove does nothing).
  if (target.offline) return false;
  try {
    await (await target.open(ref)).readManifest();
    return true;
  } catch {
    return false;
  }
}
