/**
 * The restore plan a drill hands to the adapter: the same one `ebr restore --to` builds (spaces with
 * their archived chunks, the meta/ files the catalog vouches for), read before anything is restored so
 * that a bad --partial or an untrusted manifest is refused before any scratch is made.
 */
import type { ArchivedChunk, RestorePlan } from '../adapter-api.js';
import { codecForReading } from '../archive/codec/index.js';
import type { ManifestMember } from '../archive/manifest.js';
import { findBackup, type BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { trustedManifest, trustedMetaFiles } from './archive-trust.js';
import { chooseSpaces } from './choose-spaces.js';
import { targetOf } from './context.js';

export async function drillPlan(o: { catalog: Catalog; instance: InstanceConfig; backupId: string; partial?: string[]; targetDir: string }): Promise<{ backup: BackupRow; plan: RestorePlan }> {
  const { catalog: cat, instance } = o;
  const backup = findBackup(cat, o.backupId, instance.name);
  const ctx = { instance: instance.name, backupId: backup.id, phase: 'drill' };
  if (backup.status !== 'complete' || backup.removed_at) {
    throw new EbrError('unknownBackup', `backup ${backup.id} is ${backup.removed_at ? 'removed' : backup.status}; only a complete backup whose archive is kept can be drilled`, {
      hint: 'pick a complete backup from `ebr list`, or leave out --backup for the latest',
      context: ctx,
    });
  }
  const reader = await targetOf(instance).open({ instance: instance.name, backupId: backup.id });
  const manifest = trustedManifest(cat, backup, await reader.readManifestFile(), ctx);
  const requested = chooseSpaces(manifest, o.partial, ctx, { refuseCritical: true });
  const codec = await codecForReading(manifest.codec, instance);
  const files = await trustedMetaFiles(reader, manifest, backup, codec, ctx, 'the archive was edited or damaged after the backup: this backup would not restore — run `ebr verify` on it and drill another one');
  const plan: RestorePlan = {
    backupId: backup.id,
    instance: instance.name,
    mode: o.partial?.length ? 'partial' : 'full',
    requested,
    spaces: manifest.spaces.map((s) => ({ ...s, chunks: manifest.members.filter((m) => m.space === s.name).map(toChunk) })),
    targetDir: o.targetDir,
    meta: { files, ...manifest.log, ...(manifest.details ? { details: manifest.details } : {}) },
  };
  return { backup, plan };
}

function toChunk(m: ManifestMember): ArchivedChunk {
  const { stream: _s, offset: _o, fileOffset, ...chunk } = m;
  return fileOffset !== undefined ? { ...chunk, offset: fileOffset } : chunk;
}
