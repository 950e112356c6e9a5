/**
 * Restoring an Informix external backup, as the ON-Bar guide describes it: ebr puts the chunks back
 * (each a byte range of its file or device, written at its offset), then ON-Bar makes the server
 * consistent from the logical log backups:
 *
 * - full (cold, server off-line): the logs the old chunks still hold are salvaged first (`onbar -b -l -s`),
 *   then `onbar -r -e` (or `-r -e -p` then `-r -l`); to a point in time `onbar -r -e -t "datetime"`;
 * - partial (warm, server on-line): noncritical dbspaces only, `onbar -r -e -p <dbspaces>` then
 *   `onbar -r -l`; no point in time (ON-Bar restores a partial set to the current time only);
 * - `--to DIR`: the chunks under DIR and nothing run; the notes say what to run where.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ArchivedChunk, InstanceContext, PlanStep, RestoreFiles, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { argv, commandStep, runTool, shellLine } from './informix-commands.js';
import type { InformixSettings } from './informix-config.js';
import { serverStatus } from './informix-session.js';

/** onbar -t takes the server's local time, "YYYY-MM-DD HH:MM:SS": ebr runs on the database host. */
export function informixTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function informixRestorer(instance: InstanceContext<InformixSettings>, plan: RestorePlan): Restorer {
  const s = instance.settings;
  const ctx = { instance: plan.instance, backupId: plan.backupId, phase: 'restore', host: s.server };
  const partial = plan.mode === 'partial';
  const chosen = plan.spaces.filter((sp) => plan.requested.includes(sp.name));
  if (partial) {
    const critical = chosen.filter((sp) => sp.critical);
    if (critical.length) {
      throw new EbrError('criticalSpace', `${critical.map((sp) => sp.name).join(', ')} cannot be restored warm: the root dbspace and the dbspaces holding the physical and logical logs are restored only with the whole server`, {
        hint: 'restore the whole backup with the server off-line (onmode -ky first)',
        context: { ...ctx, space: critical[0]!.name },
      });
    }
    if (plan.until) {
      throw new EbrError('usage', 'ON-Bar restores a partial set of dbspaces to the current time only; --until needs a full restore', { hint: 'leave out --until, or restore the whole backup', context: ctx });
    }
  }
  const blockedAt = typeof plan.meta.details?.blockedAt === 'string' ? new Date(plan.meta.details.blockedAt) : undefined;
  if (plan.until && blockedAt && plan.until.getTime() < blockedAt.getTime()) {
    throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} was taken (blocked at ${blockedAt.toISOString()}); ON-Bar rolls an external backup forward only`, {
      hint: 'pick an older backup (`ebr list`), or a later time',
      context: ctx,
    });
  }
  const until = plan.until ? informixTime(plan.until) : undefined;
  const runs: string[][] = plan.targetDir
    ? []
    : partial
      ? [argv.restoreExternal(s, { physical: true, dbspaces: chosen.map((sp) => sp.name) }), argv.restoreLogs(s)]
      : until
        ? [argv.restoreExternal(s, { until })]
        : s.physicalThenLogical
          ? [argv.restoreExternal(s, { physical: true }), argv.restoreLogs(s)]
          : [argv.restoreExternal(s)];
  const salvage = !plan.targetDir && !partial && s.salvageLogs;
  const metaFiles = metaToWrite(plan, partial);

  return {
    extraRoots: () => [...new Set(metaFiles.map((m) => path.dirname(m.dest)))],

    async plan(): Promise<PlanStep[]> {
      const writes = metaFiles.map((m): PlanStep => ({ phase: 'finish', kind: 'write', text: `${m.dest} (${m.key} from the backup's meta/${plan.targetDir ? '' : ', missing on this host'})` }));
      if (plan.targetDir) return [...writes, { phase: 'finish', kind: 'note', text: `the chunks are written under ${plan.targetDir} at their offsets; nothing is run there` }];
      return [
        commandStep('check', argv.status(s)),
        { phase: 'check', kind: 'note', text: partial ? `server ${s.server} on-line (warm restore of ${plan.requested.join(', ')})` : `server ${s.server} off-line (cold restore)` },
        ...(salvage ? [commandStep('check', argv.salvage(s))] : []),
        ...writes,
        ...runs.map((a) => commandStep('finish', a)),
      ];
    },

    async check(signal) {
      if (plan.targetDir) return;
      const st = await serverStatus(s, ctx, signal);
      if (partial && !st.up) {
        throw new EbrError('restore', `server ${s.server} is not running; a partial (warm) restore needs it on-line`, { hint: 'start it (oninit), or restore the whole backup cold', context: ctx });
      }
      if (!partial && st.up) {
        throw new EbrError('inUse', `server ${s.server} is ${st.mode}; a full external restore needs it off-line`, { hint: 'take it off-line first: onmode -ky', context: ctx });
      }
      // Before any chunk is written: the logs not yet backed up are still in the old chunks.
      if (salvage) await runTool(s, argv.salvage(s), { code: 'restore', what: 'cannot salvage the logical logs', context: ctx, signal });
    },

    destinationOf(chunk: ArchivedChunk): string {
      // Under --to DIR the chunk's own path below DIR: ranges of one file or device share one file there too.
      return plan.targetDir ? path.join(plan.targetDir, chunk.path) : chunk.path;
    },

    async finish(signal, files: RestoreFiles) {
      const notes: string[] = [];
      // ON-Bar reads onconfig, sqlhosts and the ixbar boot file: put back the ones this host lacks (an
      // existing one is newer than the backup's — the ixbar file grows with every log backup — and stays).
      for (const m of metaFiles) {
        await files.writeFile(m.dest, m.data, { mode: 0o644 });
        notes.push(`wrote ${m.key} from the backup to ${m.dest}`);
      }
      if (plan.targetDir) {
        notes.push(`the chunks are under ${plan.targetDir}, each at its offset in its file; to use them, point the chunk paths (or their links) there and run: ${shellLine(argv.restoreExternal(s, until ? { until } : {}))}`);
        return { notes };
      }
      for (const a of runs) {
        await runTool(s, a, { code: 'restore', what: 'ON-Bar could not finish the external restore', context: ctx, signal });
        notes.push(`ran ${shellLine(a)}`);
      }
      return { notes, details: { ran: runs.map(shellLine), ...(until ? { until } : {}) } };
    },
  };
}

/** Where the backup recorded its meta files (onconfig, sqlhosts, ixbar) at backup time. */
function recordedMetaPaths(plan: RestorePlan): Record<string, string> {
  const p = plan.meta.details?.metaPaths;
  return p && typeof p === 'object' ? (p as Record<string, string>) : {};
}

/**
 * The meta files a restore writes: under --to DIR every one at its recorded path below DIR; in place
 * (full restore) only those missing on this host; a warm restore none (the server is running on them).
 */
function metaToWrite(plan: RestorePlan, partial: boolean): Array<{ key: string; dest: string; data: Buffer }> {
  if (partial) return [];
  const out: Array<{ key: string; dest: string; data: Buffer }> = [];
  for (const [key, recorded] of Object.entries(recordedMetaPaths(plan))) {
    const data = plan.meta.files?.[key];
    if (data === undefined || !path.isAbsolute(recorded)) continue;
    const dest = plan.targetDir ? path.join(plan.targetDir, recorded) : recorded;
    if (!plan.targetDir && existsSync(recorded)) continue;
    out.push({ key, dest, data: Buffer.from(data) });
  }
  return out;
}
