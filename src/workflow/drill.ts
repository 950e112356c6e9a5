/**
 * A restore drill: proves a backup restorable by doing it. The backup is restored into a scratch
 * directory exactly as `ebr restore --to` would (every digest checked, the adapter's finish run), the
 * adapter starts the DBMS on the copy, replays the log archive to its end and runs the DBMS's own
 * checks; the result is recorded in the catalog and the scratch removed, whatever happened.
 */
import { chown, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DrillCheck, DrillReport, RestorePlan } from '../adapter-api.js';
import type { BackupRow } from '../catalog/backups.js';
import { findBackup } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { beginDrill, finishDrill, setDrillServer } from '../catalog/drills.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted } from '../errors.js';
import { thisRunner } from '../util/runner.js';
import { adapterOf, instanceContext } from './context.js';
import { drillPlan } from './drill-plan.js';
import { cleanAbandonedDrills, makeScratch, removeScratch, scratchRootOf } from './drill-scratch.js';
import { runRestore } from './restore.js';
import { runVerify } from './verify.js';

export interface DrillOptions {
  config: Config;
  instance: InstanceConfig;
  catalog: Catalog;
  backupId?: string;
  partial?: string[];
  /** Root under which the drill makes its scratch directory (default: config drill.scratch, else beside the catalog). */
  scratch?: string;
  signal: AbortSignal;
}

export interface DrillResult {
  drillId: number;
  backupId: string;
  instance: string;
  status: 'passed' | 'failed';
  spaces: string[];
  /** Restore into scratch, digests checked, the adapter's finish included (MariaDB replays binlogs there). */
  restoreMs?: number;
  /** The DBMS started on the copy until it had replayed the logs and opened. */
  recoverMs?: number;
  /** The DBMS's checks. */
  checkMs?: number;
  checks: DrillCheck[];
  logApplied?: DrillReport['logApplied'];
  /** False when the adapter has no drill: only the archive's digests were checked. */
  dbmsChecked: boolean;
  notes: string[];
  restoreId?: number;
  scratch: string;
  scratchRemoved: boolean;
  error?: { code: string; message: string; hint?: string | undefined; context?: Record<string, unknown> };
}

export async function runDrill(o: DrillOptions): Promise<DrillResult> {
  const { catalog: cat, instance } = o;
  const left = await cleanAbandonedDrills(cat);
  const backup = findBackup(cat, o.backupId ?? 'latest', instance.name);
  const adapter = adapterOf(instance);
  const scratch = await makeScratch(scratchRootOf(o.config, o.scratch), `${instance.name}-${backup.id}`);
  const copyDir = path.join(scratch, 'data');
  const result: DrillResult = {
    drillId: 0,
    backupId: backup.id,
    instance: instance.name,
    status: 'failed',
    spaces: [],
    checks: [],
    dbmsChecked: Boolean(adapter.drill),
    notes: left.map((l) => `removed what a dead drill left: ${l}`),
    scratch,
    scratchRemoved: false,
  };
  let plan: RestorePlan;
  try {
    plan = (await drillPlan({ catalog: cat, instance, backupId: backup.id, ...(o.partial ? { partial: o.partial } : {}), targetDir: copyDir })).plan;
  } catch (err) {
    const e = asEbrError(err, 'restore', { instance: instance.name, backupId: backup.id, phase: 'drill' });
    await removeScratch(scratch);
    // A misspelled space or a removed backup is the user's mistake, not a backup that failed its drill.
    if (e.exitCode === 2) throw e;
    return failEarly(cat, backup, o, result, e);
  }
  result.spaces = plan.requested;
  result.drillId = beginDrill(cat, { backupId: backup.id, instance: instance.name, ...(o.partial ? { spaces: plan.requested } : {}), scratch, runner: thisRunner() });
  const ctx = { instance: instance.name, backupId: backup.id, phase: 'drill', drillId: result.drillId };
  try {
    if (adapter.drill) await restoreAndCheck(o, plan, copyDir, scratch, result, ctx);
    else await verifyOnly(o, backup, result);
    result.status = result.checks.every((c) => c.ok) ? 'passed' : 'failed';
    if (result.status === 'failed') {
      const bad = result.checks.filter((c) => !c.ok);
      result.error = toError(
        new EbrError('restore', `drill of backup ${backup.id} failed: ${bad.map((c) => `${c.name}: ${c.detail.split('\n')[0]}`).join('; ')}`, {
          hint: 'this backup restores but its data is damaged: do not rely on it; take a new backup and drill older ones (`ebr drill --backup ID`)',
          context: ctx,
        }),
      );
    }
  } catch (err) {
    const e = asEbrError(err, 'restore', ctx);
    result.status = 'failed';
    result.checks.push({ name: e.context.phase === 'restore' || !result.restoreMs ? 'restore' : 'drill', ok: false, detail: e.message });
    result.error = toError(e);
  } finally {
    result.scratchRemoved = await removeScratch(scratch);
    if (!result.scratchRemoved) result.notes.push(`the scratch directory ${scratch} could not be removed; remove it by hand`);
  }
  finishDrill(cat, result.drillId, {
    status: result.status,
    checks: result.checks,
    ...pick(result, ['restoreMs', 'recoverMs', 'checkMs', 'logApplied', 'restoreId']),
    ...(result.error ? { error: result.error } : {}),
  });
  return result;
}

/** Restore into the scratch, then the adapter's drill on the copy. */
async function restoreAndCheck(o: DrillOptions, plan: RestorePlan, copyDir: string, scratch: string, result: DrillResult, ctx: Record<string, unknown>): Promise<void> {
  const { catalog: cat, instance, signal } = o;
  const started = performance.now();
  const restored = await runRestore({ config: o.config, instance, catalog: cat, backupId: plan.backupId, ...(o.partial ? { partial: o.partial } : {}), to: copyDir, signal });
  result.restoreMs = performance.now() - started;
  result.restoreId = restored.restoreId;
  result.checks.push({ name: 'restore', ok: true, detail: `${restored.files} files, ${restored.bytes} bytes restored into scratch, every digest checked` });
  throwIfAborted(signal, ctx);
  // The drill's own directory belongs to whoever owns the copy: the DBMS runs as that user.
  const run = path.join(scratch, 'run');
  await mkdir(run, { mode: 0o700 });
  const owner = await stat(copyDir);
  if (process.getuid?.() === 0 && owner.uid !== 0) await chown(run, owner.uid, owner.gid);
  const drillStarted = performance.now();
  const report = await adapterOf(instance).drill!(instanceContext(o.config, instance), {
    dir: copyDir,
    plan,
    restored,
    scratch: run,
    onSpawn: async (pid) => setDrillServer(cat, result.drillId, pid),
  }, signal);
  result.checks.push(...report.checks);
  if (report.recoverMs !== undefined) result.recoverMs = report.recoverMs;
  result.checkMs = performance.now() - drillStarted - (report.recoverMs ?? 0);
  if (report.logApplied) result.logApplied = report.logApplied;
  result.notes.push(...report.notes);
}

/** An adapter without a drill: every byte of the archive read back against the catalog's digests, and said plainly that no DBMS check ran. */
async function verifyOnly(o: DrillOptions, backup: BackupRow, result: DrillResult): Promise<void> {
  const started = performance.now();
  const v = await runVerify({ catalog: o.catalog, instance: o.instance, backupId: backup.id, signal: o.signal });
  result.restoreMs = performance.now() - started;
  result.checks.push({
    name: 'archive digests',
    ok: v.damaged.length === 0,
    detail: v.damaged.length === 0 ? `all ${v.members} members read back, every digest matches` : v.damaged.slice(0, 3).map((d) => `space ${d.space}, member ${d.member}: ${d.problem}`).join('\n'),
  });
  result.notes.push(`the ${adapterOf(o.instance).vendor} adapter has no drill: the archive was read back and every digest checked, but the DBMS check was not run and the backup was not started`);
}

function failEarly(cat: Catalog, backup: BackupRow, o: DrillOptions, result: DrillResult, e: EbrError): DrillResult {
  result.drillId = beginDrill(cat, { backupId: backup.id, instance: o.instance.name, ...(o.partial ? { spaces: o.partial } : {}), scratch: result.scratch, runner: thisRunner() });
  result.checks.push({ name: 'restore', ok: false, detail: e.message });
  result.error = toError(e);
  result.scratchRemoved = true;
  finishDrill(cat, result.drillId, { status: 'failed', checks: result.checks, error: result.error });
  return result;
}

function toError(e: EbrError): NonNullable<DrillResult['error']> {
  return { code: e.code, message: e.message, hint: e.hint, context: e.context };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
