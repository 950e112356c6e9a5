/**
 * Consistency groups across instances (`groups:` in the config): one backup of every member inside one
 * window — all blocked, then all frozen, then all released (group-barrier.ts) — each streamed as its
 * own backup and tied by one group id; and the restore of every member of one group backup to one
 * instant: the group's (each member at its own consistency point, which the barrier made the same
 * instant) or a common `--until`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { newBackupId } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Config, GroupConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { runBackup, type BackupResult } from './backup.js';
import { adapterOf } from './context.js';
import { GroupBarrier } from './group-barrier.js';
import type { ProgressListener } from './progress.js';
import { planRestore, runRestore, type RestoreResult } from './restore.js';

export interface GroupBackupResult {
  group: string;
  groupId: string;
  /** From the first member blocked to the last released. */
  windowMs: number | undefined;
  /** The instant at which every member was blocked. */
  instant: string | undefined;
  members: BackupResult[];
}

export function groupOf(config: Config, name: string): GroupConfig {
  const g = config.groups[name];
  if (!g) {
    const known = Object.keys(config.groups);
    throw new EbrError('usage', `no group ${JSON.stringify(name)} in ${config.file}`, {
      hint: known.length ? `known groups: ${known.join(', ')}` : 'define one under groups: (groups: { erp: { instances: [a, b] } })',
    });
  }
  return g;
}

export async function runGroupBackup(o: { config: Config; group: GroupConfig; catalog: Catalog; signal: AbortSignal; onProgress?: ProgressListener }): Promise<GroupBackupResult> {
  const g = o.group;
  const groupId = `G${newBackupId()}`;
  const barrier = new GroupBarrier(g.name, g.instances, g.instances.filter((i) => adapterOf(o.config.instances[i]!).capabilities.consistentAtUnblock));
  const settled = await Promise.allSettled(
    g.instances.map((name) =>
      runBackup({
        config: o.config,
        instance: o.config.instances[name]!,
        catalog: o.catalog,
        signal: o.signal,
        ...(o.onProgress ? { onProgress: o.onProgress } : {}),
        group: { id: groupId, name: g.name, members: g.instances, barrier, maxBlockMs: g.maxBlockMs },
      }).catch((err: unknown) => {
        // A member that failed before its window (connect, discovery) must not leave the others waiting.
        barrier.fail(name, err);
        barrier.earlyReleased(name);
        throw err;
      }),
    ),
  );
  const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ member: g.instances[i]!, err: r.reason as Error }] : []));
  if (failed.length) {
    // The member whose own failure started it, not those that failed because of it.
    const first = failed.find((f) => !/^member .* of group .* failed/.test(f.err.message)) ?? failed[0]!;
    throw new EbrError('block', `the backup of group ${g.name} failed: ${first.member}: ${first.err.message}`, {
      hint: `every member was released; the backups of ${failed.map((f) => f.member).join(', ')} are failed${failed.length < g.instances.length ? ' and the others belong to no complete group backup' : ''}; see \`ebr list\``,
      context: { group: g.name, groupId, instance: first.member },
      cause: first.err,
    });
  }
  return { group: g.name, groupId, windowMs: barrier.windowMs, instant: barrier.instant, members: settled.map((r) => (r as PromiseFulfilledResult<BackupResult>).value) };
}

export interface GroupBackupRow {
  groupId: string;
  instant?: string;
  members: Array<{ instance: string; backupId: string; status: string }>;
  complete: boolean;
}

/** Every backup of a group the catalog holds, newest first; complete when every member's backup is. */
export function groupBackups(cat: Catalog, g: GroupConfig): GroupBackupRow[] {
  const rows = cat.db.prepare("SELECT id, instance, status, removed_at, meta FROM backups WHERE meta LIKE '%\"group\":%' ORDER BY started_at DESC").all() as Array<{ id: string; instance: string; status: string; removed_at: string | null; meta: string }>;
  const byId = new Map<string, GroupBackupRow>();
  for (const r of rows) {
    const tie = (JSON.parse(r.meta) as { group?: { id: string; name: string; instant?: string } }).group;
    if (!tie || tie.name !== g.name) continue;
    let row = byId.get(tie.id);
    if (!row) byId.set(tie.id, (row = { groupId: tie.id, ...(tie.instant ? { instant: tie.instant } : {}), members: [], complete: false }));
    row.members.push({ instance: r.instance, backupId: r.id, status: r.removed_at ? 'removed' : r.status });
  }
  for (const row of byId.values()) row.complete = g.instances.every((i) => row.members.some((m) => m.instance === i && m.status === 'complete'));
  return [...byId.values()];
}

export interface GroupRestoreResult {
  group: string;
  groupId: string;
  until?: string;
  members: RestoreResult[];
}

/**
 * Restores every member of one complete group backup, one after another, each all-or-nothing on its
 * own; every member is checked (adapter able to stop where asked, manifest trusted, destinations
 * computed) before the first is written. `--to DIR` puts member M under DIR/M.
 */
export async function runGroupRestore(o: { config: Config; group: GroupConfig; catalog: Catalog; groupId?: string; to?: string; until?: string; signal: AbortSignal }): Promise<GroupRestoreResult> {
  const g = o.group;
  const all = groupBackups(o.catalog, g);
  const chosen = !o.groupId || o.groupId === 'latest' ? all.find((r) => r.complete) : all.find((r) => r.groupId === o.groupId);
  if (!chosen) {
    throw new EbrError('unknownBackup', o.groupId && o.groupId !== 'latest' ? `group ${g.name} has no backup ${o.groupId}` : `group ${g.name} has no complete backup`, {
      hint: all.length ? `its backups: ${all.map((r) => `${r.groupId}${r.complete ? '' : ' (incomplete)'}`).join(', ')}` : `take one with \`ebr backup --group ${g.name}\``,
      context: { group: g.name },
    });
  }
  if (!chosen.complete) {
    throw new EbrError('unknownBackup', `group backup ${chosen.groupId} of ${g.name} is incomplete (${chosen.members.map((m) => `${m.instance} ${m.status}`).join(', ')}): its members would not restore to one instant`, {
      hint: 'restore a complete group backup (leave out --backup for the newest), or restore a member on its own with `ebr restore --instance`',
      context: { group: g.name },
    });
  }
  for (const name of g.instances) {
    const adapter = adapterOf(o.config.instances[name]!);
    if (o.until ? !adapter.capabilities.pointInTimeRestore : !adapter.capabilities.restoreToBackupEnd) {
      throw new EbrError('usage', `member ${name} (${adapter.vendor}) cannot ${o.until ? 'roll forward to --until' : 'stop at its backup\'s own consistency point'}, so the group cannot be restored to one instant`, {
        hint: o.until ? 'leave out --until to restore every member to the group\'s instant' : `restore the members one by one with \`ebr restore --instance\``,
        context: { group: g.name, instance: name },
      });
    }
  }
  // Every member's manifest checked against the catalog and every destination computed before the first member is written.
  for (const name of g.instances) {
    const m = chosen.members.find((x) => x.instance === name)!;
    await planRestore({ config: o.config, instance: o.config.instances[name]!, catalog: o.catalog, backupId: m.backupId, ...(o.to ? { to: path.join(o.to, name) } : {}), ...(o.until ? { until: o.until } : { toBackupEnd: true }), signal: o.signal });
  }
  // DIR holds every member's directory: each DBMS, running as its own user, must be able to pass through it.
  if (o.to) await mkdir(o.to, { recursive: true, mode: 0o755 });
  const members: RestoreResult[] = [];
  for (const name of g.instances) {
    const m = chosen.members.find((x) => x.instance === name)!;
    members.push(
      await runRestore({
        config: o.config,
        instance: o.config.instances[name]!,
        catalog: o.catalog,
        backupId: m.backupId,
        ...(o.to ? { to: path.join(o.to, name) } : {}),
        ...(o.until ? { until: o.until } : { toBackupEnd: true }),
        signal: o.signal,
      }),
    );
  }
  return { group: g.name, groupId: chosen.groupId, ...(o.until ? { until: o.until } : {}), members };
}
