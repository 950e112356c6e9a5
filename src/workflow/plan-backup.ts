/**
 * `ebr backup --dry-run`: what a backup of an instance would do, in order — the adapter's statements,
 * the snapshot, the files read and the archive written — without connecting to anything. The files
 * come from the last discovery the catalog recorded for the instance (a backup or `ebr spaces` records
 * one); the statements do not depend on them.
 */
import type { PlanStep } from '../adapter-api.js';
import type { BackupType } from '../archive/manifest.js';
import { keptBackups } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { discoveryOf, type DiscoveryRow } from '../catalog/discovery.js';
import type { Config, InstanceConfig } from '../config/load.js';
import type { Space } from '../model.js';
import { noteStep } from '../plan.js';
import { adapterOf, instanceContext, providerOf, targetOf } from './context.js';

export interface BackupPlan {
  instance: string;
  vendor: string;
  /** Where the file list came from. */
  filesFrom: string;
  steps: PlanStep[];
}

export function planBackup(config: Config, instance: InstanceConfig, cat: Catalog, type: BackupType = 'full'): BackupPlan {
  const adapter = adapterOf(instance);
  const provider = providerOf(config, instance);
  const target = targetOf(instance);
  const last = cat.db.prepare('SELECT b.id, b.started_at FROM backups b WHERE b.instance = ? AND EXISTS (SELECT 1 FROM discovery d WHERE d.backup_id = b.id) ORDER BY b.started_at DESC LIMIT 1').get(instance.name) as
    | { id: string; started_at: string }
    | undefined;
  const spaces = last ? spacesOf(discoveryOf(cat, last.id)) : [];
  const filesFrom = last ? `the discovery of backup ${last.id} (${last.started_at}); a real backup discovers again` : 'no discovery recorded yet: a real backup lists the files first (see `ebr spaces`)';
  const ctx = instanceContext(config, instance);
  const adapterSteps = instance.mirror ? adapter.mirror!.planBackup(ctx, instance.mirror, spaces) : adapter.planBackup(ctx, spaces);
  const chunks = spaces.flatMap((s) => s.chunks);
  const ours: Record<string, PlanStep[]> = {
    discover: [noteStep('discover', `the spaces are recorded in the catalog ${config.catalog}`), noteStep('check-snapshot', `the ${provider.kind} snapshot provider checks that it can freeze every chunk`), noteStep('check-target', `the ${target.kind} target checks its free space`), ...(type !== 'full' ? [noteStep('check-target', parentNote(cat, instance.name, type))] : [])],
    acquire: [noteStep('acquire', `${provider.kind} snapshot of ${chunks.length} chunk(s), inside maxBlockMs ${instance.maxBlockMs} ms${adapter.capabilities.blockSurvivesSession ? '; a watchdog process ends the block at the deadline if ebr cannot' : ''}`)],
    release: [],
    stream: [
      ...spaces.flatMap((s) => s.chunks.map((c): PlanStep => ({ phase: 'stream', kind: 'read', text: `${c.path} (frozen copy; ${c.offset !== undefined ? `bytes ${c.offset}–${c.offset + c.size - 1}` : `${c.size} bytes`}, space ${s.name})` }))),
      ...spaces.map((s): PlanStep => ({ phase: 'stream', kind: 'write', text: `${target.kind} target: space ${s.name} (${s.chunks.length} member(s), sha256 of every byte${type !== 'full' ? '; of files the parent holds too, only the blocks that differ from it' : ''})${instance.compression && instance.compression.type !== 'none' ? `, ${instance.compression.type}` : ''}${instance.encryption ? ', encrypted' : ''}` })),
      { phase: 'seal', kind: 'write', text: `${target.kind} target: manifest and meta/ files, fsynced; the catalog marks the backup complete` },
      noteStep('seal', 'the snapshot is released'),
    ],
  };
  // The adapter's steps in its order, with ebr's own after the phase they belong to.
  const steps: PlanStep[] = [];
  const phases = [...new Set(adapterSteps.map((s) => s.phase))];
  for (const p of phases) {
    steps.push(...adapterSteps.filter((s) => s.phase === p));
    steps.push(...(ours[p] ?? []));
    delete ours[p];
  }
  for (const rest of Object.values(ours)) steps.push(...rest);
  return { instance: instance.name, vendor: adapter.vendor, filesFrom, steps: ordered(steps) };
}

/** Which backup an incr or diff would be compared with, as chooseBase picks it (the parent's manifest is not read here). */
function parentNote(cat: Catalog, instance: string, type: BackupType): string {
  const kept = keptBackups(cat, instance);
  const row = type === 'incr' ? kept[0] : kept.find((b) => (b.type ?? 'full') === 'full');
  if (!row) return `no ${type === 'incr' ? '' : 'full '}backup to compare with: the backup is taken full`;
  return `the blocks of every file are compared with backup ${row.id} (${row.type ?? 'full'}, ${row.started_at}), whose manifest is read and checked against the catalog; it is taken full if that fails or the backup has no block digests`;
}

const order = ['connect', 'preflight', 'discover', 'check-snapshot', 'check-target', 'checkpoint', 'acquire', 'release', 'after-release', 'stream', 'seal'];
/** Stable by the workflow's phase order; phases it does not know keep their place after the one before. */
function ordered(steps: PlanStep[]): PlanStep[] {
  let last = 0;
  const rank = steps.map((s) => {
    const i = order.indexOf(s.phase);
    if (i >= 0) last = i;
    return last;
  });
  return steps.map((s, i) => ({ s, r: rank[i]!, i })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.s);
}

function spacesOf(rows: DiscoveryRow[]): Space[] {
  const byName = new Map<string, Space>();
  for (const r of rows) {
    let s = byName.get(r.space);
    if (!s) byName.set(r.space, (s = { name: r.space, kind: r.space_kind, critical: r.critical === 1, chunks: [] }));
    s.chunks.push({ space: r.space, name: r.chunk, path: r.path, type: r.type as Space['chunks'][number]['type'], size: r.size, ...(r.offset ? { offset: r.offset } : {}), ...(r.details ? { details: JSON.parse(r.details) as Record<string, unknown> } : {}) });
  }
  return [...byName.values()];
}
