/**
 * The chain of an incremental or differential restore: the other backups whose streams hold blocks of
 * its files, each opened with its trusted manifest and its own codec before anything is written.
 */
import type { ArchiveReader } from '../archive/archive-target.js';
import type { Codec } from '../archive/codec.js';
import { codecForReading } from '../archive/codec/index.js';
import type { Manifest } from '../archive/manifest.js';
import type { BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { trustedManifest } from './archive-trust.js';
import type { targetOf } from './context.js';
import { damaged } from './restore-extract.js';

export interface ChainBackup {
  id: string;
  reader: ArchiveReader;
  manifest: Manifest;
  codec: Codec;
}

/** Backup `id` as a link of a chain of `instance`: its row, and why it cannot lend its blocks (undefined: it can). */
export function chainLink(cat: Catalog, id: string, instance: string): { row?: BackupRow; why?: string } {
  const row = cat.db.prepare('SELECT * FROM backups WHERE id = ?').get(id) as BackupRow | undefined;
  const why = !row ? 'is not in the catalog' : row.instance !== instance ? `belongs to instance ${row.instance}` : row.status !== 'complete' ? `is ${row.status}` : row.removed_at ? `was removed on ${row.removed_at}` : undefined;
  return { ...(row ? { row } : {}), ...(why ? { why } : {}) };
}

/**
 * The other backups an incremental reads blocks from, each with its reader, trusted manifest and codec.
 * Every one must still be complete and kept: retention keeps them, but a catalog edited by hand or an
 * archive removed outside ebr must fail here, before anything is written, naming the missing backup.
 */
export async function chainOf(cat: Catalog, instance: InstanceConfig, manifest: Manifest, target: ReturnType<typeof targetOf>, ctx: Record<string, unknown>): Promise<Map<string, ChainBackup>> {
  const chain = new Map<string, ChainBackup>();
  const named = new Set(manifest.chain ?? []);
  for (const m of manifest.members) {
    for (const run of m.parts ?? []) {
      if (run.backup && !named.has(run.backup)) throw damaged(`member ${m.name} reads blocks from backup ${run.backup}, which the manifest's chain does not name`, m.space, m.name, ctx);
    }
  }
  for (const id of named) {
    const { row, why } = chainLink(cat, id, instance.name);
    if (why || !row) {
      throw new EbrError('brokenChain', `backup ${String(ctx.backupId)} is ${manifest.type === 'diff' ? 'differential' : 'incremental'} and reads blocks from backup ${id}, which ${why}`, {
        hint: 'nothing was written; restore a backup whose chain is whole (`ebr list` shows each backup\'s parent), or a full backup',
        context: { ...ctx, needs: id },
      });
    }
    const reader = await target.open({ instance: instance.name, backupId: id });
    const m = trustedManifest(cat, row, await reader.readManifestFile(), { ...ctx, chainBackup: id });
    chain.set(id, { id, reader, manifest: m, codec: await codecForReading(m.codec, instance) });
  }
  return chain;
}
