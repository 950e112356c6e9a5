/**
 * The log archive's lifecycle: which retained backup needs which reach (src's part), which archived
 * logs that leaves unneeded (the adapter's part, LogCommands.lifecycle), and their removal. Also the
 * chain check `ebr verify` runs. Nothing here knows what a WAL segment or a binlog is.
 */
import type { InstanceContext } from '../adapter-api.js';
import type { BackupRow } from '../catalog/backups.js';
import { keptBackups } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError, throwIfAborted } from '../errors.js';
import type { LogChainReport, LogLifecycle, LogNeed } from '../logs/log-lifecycle.js';
import type { LogStore } from '../logs/log-store.js';
import type { BackupMeta } from '../model.js';
import { windowAnchor } from '../schedule/retention-policy.js';
import { adapterOf, logStoreOf } from './context.js';

export interface LogPurgeResult {
  instance: string;
  kind: string;
  dryRun: boolean;
  /** The backup the point-in-time window starts from: `--until` works from its end on. */
  anchor: string;
  /** How many retained backups roll forward to the archive's end, and how many keep only their own logs. */
  rollForward: string[];
  consistentOnly: string[];
  removed: Array<{ name: string; why: string }>;
  kept: number;
  oldestKept: string[];
  notes: string[];
}

/**
 * What each retained backup needs of the log archive: 'end' from the window's anchor on, 'consistent'
 * before it. Pinned backups are among the retained ones, so the logs their restore needs always stay.
 */
export function logNeeds(retained: BackupRow[], logDays: number | undefined, now: Date): { anchor: string | undefined; needs: LogNeed[] } {
  const anchor = windowAnchor(retained.map((b) => ({ id: b.id, endedAt: b.finished_at ?? b.started_at })), logDays, now);
  const anchorEnd = retained.find((b) => b.id === anchor);
  const from = anchorEnd ? (anchorEnd.finished_at ?? anchorEnd.started_at) : '';
  const needs = retained.map((b): LogNeed => ({ backupId: b.id, meta: metaOf(b), reach: (b.finished_at ?? b.started_at) >= from ? 'end' : 'consistent' }));
  return { anchor, needs };
}

/** A backup's meta as the catalog holds it (the meta/ files themselves stay in the archive). */
export function metaOf(b: BackupRow): BackupMeta {
  let details: Record<string, unknown> = {};
  try {
    details = b.meta ? (JSON.parse(b.meta) as Record<string, unknown>) : {};
  } catch {
    details = {};
  }
  delete details.files;
  return { ...(b.log_start ? { logStart: b.log_start } : {}), ...(b.log_end ? { logEnd: b.log_end } : {}), ...(b.timeline !== null ? { timeline: b.timeline } : {}), details };
}

/** The adapter's lifecycle and the store, or a refusal that says why this archive cannot be purged. */
export function lifecycleOf(instance: InstanceConfig): { lifecycle: LogLifecycle; kind: string; context: InstanceContext } {
  const adapter = adapterOf(instance);
  const kind = adapter.capabilities.logArchive;
  const ctx = { instance: instance.name, phase: 'log purge' };
  if (!kind || !adapter.logs) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps no log archive`, { hint: 'there is nothing to purge', context: ctx });
  }
  if (!adapter.logs.lifecycle) {
    throw new EbrError('usage', `the ${instance.adapter} adapter cannot tell which of its ${kind} logs retained backups need, so ebr never purges its log archive`, {
      hint: `remove old ${kind} logs with the DBMS's own tools, keeping every log from the oldest backup you keep on`,
      context: ctx,
    });
  }
  return { lifecycle: adapter.logs.lifecycle, kind, context: purgeContext(instance) };
}

/**
 * Removes every archived log no retained backup needs (or, with dryRun, only says which). The caller
 * holds the instance's lock when it removes, so no backup, restore or retention runs meanwhile; logs
 * the server archives meanwhile are newer than every retained backup and are never purged.
 */
export async function purgeLogs(o: { catalog: Catalog; instance: InstanceConfig; dryRun?: boolean; now?: Date; retained?: BackupRow[]; signal: AbortSignal }): Promise<LogPurgeResult> {
  const { lifecycle, kind, context } = lifecycleOf(o.instance);
  const ctx = { instance: o.instance.name, phase: 'log purge' };
  const store = context.logStore!(kind);
  if (!o.dryRun && !store.remove) {
    throw new EbrError('usage', `the ${o.instance.target.type} target's log archive cannot remove single logs, so ebr does not purge it`, {
      hint: "remove old logs with the storage's own lifecycle rules, keeping every log `ebr log purge --dry-run` lists as kept",
      context: ctx,
    });
  }
  const retained = o.retained ?? keptBackups(o.catalog, o.instance.name);
  // No backup, no anchor: every log might be the start of the next backup's roll-forward.
  if (retained.length === 0) {
    throw new EbrError('usage', `instance ${o.instance.name} has no complete backup, so no log can be judged unneeded`, {
      hint: 'take a backup first (`ebr backup`); purge keeps every log from the oldest retained backup on',
      context: ctx,
    });
  }
  const { anchor, needs } = logNeeds(retained, o.instance.retention?.logDays, o.now ?? new Date());
  const plan = await lifecycle.purgeable(context, needs, o.signal);
  const removed: LogPurgeResult['removed'] = [];
  if (!o.dryRun) {
    for (const r of plan.remove) {
      throwIfAborted(o.signal, ctx);
      await store.remove!(r.name);
      removed.push(r);
    }
  }
  return {
    instance: o.instance.name,
    kind,
    dryRun: o.dryRun === true,
    anchor: anchor!,
    rollForward: needs.filter((n) => n.reach === 'end').map((n) => n.backupId),
    consistentOnly: needs.filter((n) => n.reach === 'consistent').map((n) => n.backupId),
    removed: o.dryRun ? plan.remove : removed,
    kept: plan.kept,
    oldestKept: plan.oldestKept,
    notes: plan.notes,
  };
}

/**
 * The continuity of the log archive for the retained backups (`ebr verify`): undefined when the
 * adapter cannot tell (no lifecycle) or the instance keeps no log archive.
 */
export async function checkLogChain(o: { catalog: Catalog; instance: InstanceConfig; now?: Date; signal: AbortSignal }): Promise<(LogChainReport & { kind: string }) | undefined> {
  const adapter = adapterOf(o.instance);
  const kind = adapter.capabilities.logArchive;
  if (!kind || !adapter.logs?.lifecycle) return undefined;
  const retained = keptBackups(o.catalog, o.instance.name);
  if (retained.length === 0) return { kind, streams: [], gaps: [], notes: ['no complete backup: nothing needs the log archive yet'] };
  const { needs } = logNeeds(retained, o.instance.retention?.logDays, o.now ?? new Date());
  return { kind, ...(await adapter.logs.lifecycle.check(purgeContext(o.instance), needs, o.signal)) };
}

function purgeContext(instance: InstanceConfig): InstanceContext {
  return { name: instance.name, settings: instance.settings, resolvePath: instance.resolvePath, logStore: (k: string): LogStore => logStoreOf(instance, k) };
}
