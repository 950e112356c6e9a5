/**
 * What an incremental or differential backup is compared with. An incr's parent is the newest kept
 * backup of the instance, a diff's the newest kept full one; its manifest is read from the target and
 * trusted only where the catalog vouches for it, like a restore's. Where there is no parent to compare
 * with (none yet, none with block digests, a parent whose chain has lost a backup) the backup is taken
 * full, and the result says why: a backup that cannot be restored later is worse than a larger one.
 */
import type { ArchiveTarget } from '../archive/archive-target.js';
import type { BackupType, Manifest } from '../archive/manifest.js';
import { keptBackups, type BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { trustedManifest } from './archive-trust.js';
import { blockDigestOf } from '../archive/block-digests.js';
import { memberKey, type BlockBase } from './stream-blocks.js';

export interface ChosenBase {
  type: BackupType;
  base?: BlockBase;
  parent?: Manifest;
  /** Why an incr or diff was taken full instead. */
  warning?: string;
}

export async function chooseBase(cat: Catalog, instance: string, asked: BackupType, target: ArchiveTarget, ctx: Record<string, unknown>): Promise<ChosenBase> {
  if (asked === 'full') return { type: 'full' };
  const kept = keptBackups(cat, instance);
  const row = asked === 'incr' ? kept[0] : kept.find((b) => (b.type ?? 'full') === 'full');
  const full = (why: string): ChosenBase => ({ type: 'full', warning: `taken as a full backup instead of ${asked === 'incr' ? 'an incremental' : 'a differential'} one: ${why}` });
  if (!row) return full(`instance ${instance} has no ${asked === 'incr' ? '' : 'full '}backup to compare with yet`);
  const lost = missingAncestor(row, kept);
  if (lost) return full(`backup ${row.id} needs backup ${lost}, which is no longer kept`);
  let parent: Manifest;
  try {
    const reader = await target.open({ instance, backupId: row.id });
    parent = trustedManifest(cat, row, await reader.readManifestFile(), { ...ctx, parentId: row.id });
  } catch (err) {
    // An unreadable or edited parent must not stop tonight's backup; `ebr verify` is the place to look into it.
    return full(`the manifest of backup ${row.id} could not be trusted (${(err as Error).message}); run \`ebr verify ${row.id}\``);
  }
  if (!parent.blockSize) return full(`backup ${row.id} has no block digests (it was taken with blockSize: 0 or by an older ebr)`);
  return {
    type: asked,
    parent,
    base: { backupId: row.id, blockSize: parent.blockSize, blockDigest: blockDigestOf(parent), members: new Map(parent.members.map((m) => [memberKey(m.space, m.name), m])) },
  };
}

/** The first backup up the parent chain of `row` that is not kept any more (removed, failed, gone). */
function missingAncestor(row: BackupRow, kept: BackupRow[]): string | undefined {
  const byId = new Map(kept.map((b) => [b.id, b]));
  for (let at = row; at.parent_id; ) {
    const next = byId.get(at.parent_id);
    if (!next) return at.parent_id;
    at = next;
  }
  return undefined;
}

/** Every backup whose body the members of an incremental read blocks from (the restore's chain), oldest first. */
export function chainOf(members: Manifest['members']): string[] {
  return [...new Set(members.flatMap((m) => (m.parts ?? []).flatMap((r) => (r.backup ? [r.backup] : []))))].sort();
}
