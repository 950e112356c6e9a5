/**
 * Restoring a Db2 database from a suspended-write snapshot, as IBM's split-mirror procedures do:
 * the files back, then `db2inidb <db> AS MIRROR | SNAPSHOT | STANDBY` (no connection first: connecting
 * to a copy before db2inidb spoils it), then for MIRROR `ROLLFORWARD DATABASE <db> TO END OF LOGS AND
 * STOP`, or `… TO <time> USING LOCAL TIME AND STOP` for `--until`.
 *
 * - in place, AS MIRROR (default) or STANDBY: every space but the log path is written back; the
 *   primary's own active and archived logs carry the roll-forward ("do not copy the log directory"
 *   when a split mirror restores the primary);
 * - in place, AS SNAPSHOT: the backup's log path too, and crash recovery makes it consistent as of the
 *   suspend; no roll-forward, so `--until` is refused;
 * - `--to DIR`: every file under DIR at its own path, and DIR/ebr-relocate.cfg (db2relocatedb's format)
 *   for `db2inidb <db> AS … RELOCATE USING DIR/ebr-relocate.cfg` on the instance that is to use it;
 *   nothing is run.
 *
 * The whole database is the unit: db2inidb initializes the database directory, the log control files
 * and every tablespace together, so a partial restore is refused.
 */
import path from 'node:path';
import type { ArchivedChunk, InstanceContext, PlanStep, RestoreFiles, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { commandStep, runTool } from './db2-clp.js';
import type { Db2Settings } from './db2-config.js';
import { logSpace } from './db2-discovery.js';
import { argv, db2Time } from './db2-queries.js';

interface BackupDetails {
  database?: string;
  instance?: string;
  suspendedAt?: string;
  resumedAt?: string;
  paths?: Array<{ type: string; path: string }>;
}

/** The path CREATE DATABASE was given, from DBPATH (`<path>/<instance>/NODE0000/SQL00001/`), for db2relocatedb's DB_PATH. */
function createPathOf(dbpath: string, instance: string): string {
  const m = new RegExp(`^(.*)/${instance.replace(/[^\w]/g, '\\$&')}/NODE\\d{4}/SQL\\d{5}/?$`).exec(dbpath);
  return m ? m[1]! || '/' : dbpath;
}

export function db2Restorer(instance: InstanceContext<Db2Settings>, plan: RestorePlan): Restorer {
  const s = instance.settings;
  const ctx = { instance: plan.instance, backupId: plan.backupId, phase: 'restore', host: `${s.instance}/${s.database}` };
  const d = (plan.meta.details ?? {}) as BackupDetails;
  const toDir = plan.targetDir;
  const as = s.restoreAs;

  if (!d.database || !d.resumedAt) {
    throw new EbrError('restore', `backup ${plan.backupId} records no Db2 database or suspend window: it was not taken by the db2 adapter, or is incomplete`, { hint: 'restore another backup (`ebr list`)', context: ctx });
  }
  if (d.database.toUpperCase() !== s.database.toUpperCase()) {
    throw new EbrError('restore', `backup ${plan.backupId} is of database ${d.database}, and this instance's db2.database is ${s.database}`, { hint: 'restore it through an instance configured for that database', context: ctx });
  }
  if (plan.mode === 'partial') {
    throw new EbrError('criticalSpace', `Db2 restores a split mirror only as a whole database: db2inidb initializes the database directory, the log control files and every tablespace together, so ${plan.requested.join(', ')} cannot be restored on its own`, {
      hint: 'restore the whole database (leave out --partial), or restore --to DIR and copy what you need from there',
      context: ctx,
    });
  }
  if (plan.until && as === 'snapshot') {
    throw new EbrError('usage', '--until needs a roll-forward, and db2.restoreAs: snapshot initializes the copy as of the suspend without one', {
      hint: 'set db2.restoreAs: mirror (the default) or standby for a restore to a point in time',
      context: ctx,
    });
  }

  const destinationOf = (c: Pick<ArchivedChunk, 'name' | 'path'>): string => {
    if (!toDir) return c.path;
    const parts = c.name.split('/');
    if (path.isAbsolute(c.name) || parts.some((p) => p === '..' || p === '.' || p === '')) {
      throw new EbrError('digestMismatch', `the archive holds a member named ${JSON.stringify(c.name)}, which would land outside ${toDir}`, { context: { ...ctx, member: c.name } });
    }
    return path.join(toDir, c.name);
  };
  const until = plan.until ? db2Time(plan.until) : undefined;
  const rollforward = as === 'mirror' || (as === 'standby' && until) ? argv.rollforward(s, until) : undefined;
  const relocateFile = toDir ? path.join(toDir, 'ebr-relocate.cfg') : undefined;

  const relocateConfig = (): string => {
    const moved = (p: string) => path.join(toDir!, path.resolve(p));
    const paths = d.paths ?? [];
    const dbpath = paths.find((p) => p.type === 'DBPATH')?.path;
    const lines = [
      `DB_NAME=${d.database},${d.database}`,
      ...(dbpath ? [`DB_PATH=${createPathOf(path.resolve(dbpath), d.instance ?? s.instance)},${moved(createPathOf(path.resolve(dbpath), d.instance ?? s.instance))}`] : []),
      `INSTANCE=${d.instance ?? s.instance},${s.instance}`,
      'NODENUM=0',
      ...paths.filter((p) => p.type === 'LOGPATH').map((p) => `LOG_DIR=${path.resolve(p.path)},${moved(p.path)}`),
      ...paths.filter((p) => p.type === 'MIRRORLOGPATH').map((p) => `MIRRORLOG_DIR=${path.resolve(p.path)},${moved(p.path)}`),
      ...paths.filter((p) => p.type.startsWith('TBSP_')).map((p) => `CONT_PATH=${path.resolve(p.path)},${moved(p.path)}`),
      ...paths.filter((p) => p.type === 'DB_STORAGE_PATH').map((p) => `STORAGE_PATH=${path.resolve(p.path)},${moved(p.path)}`),
    ];
    return `${lines.join('\n')}\n`;
  };

  return {
    spacesToWrite: () => plan.spaces.map((sp) => sp.name).filter((n) => toDir || as === 'snapshot' || n !== logSpace),

    async plan() {
      const steps: PlanStep[] = [];
      if (!toDir) steps.push(commandStep('check', argv.activeDatabases(s)));
      if (toDir) {
        steps.push({ phase: 'finish', kind: 'write', text: `${relocateFile} (db2relocatedb configuration)` });
        steps.push({ phase: 'finish', kind: 'note', text: `to be run on the instance that is to use ${toDir}: ${argv.inidb(s, as, relocateFile).join(' ')}${rollforward ? `, then ${rollforward.join(' ')}` : ''}` });
        return steps;
      }
      if (as !== 'snapshot') steps.push({ phase: 'finish', kind: 'note', text: `the log path (${logSpace}) is not written back: roll-forward uses the database's own logs` });
      steps.push(commandStep('finish', argv.inidb(s, as)));
      if (rollforward) steps.push(commandStep('finish', rollforward));
      return steps;
    },

    async check(signal) {
      for (const c of plan.spaces.flatMap((sp) => sp.chunks)) destinationOf(c);
      if (plan.until && plan.until.getTime() < new Date(d.resumedAt!).getTime()) {
        throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} resumed writes (${d.resumedAt}); roll-forward cannot stop before the copy is consistent`, {
          hint: 'pick an older backup with --backup ID (see `ebr list`), or a later --until',
          context: ctx,
        });
      }
      if (toDir) return;
      const r = await runTool(s, argv.activeDatabases(s), { code: 'restore', what: 'cannot tell whether the database is active', context: { ...ctx, phase: 'check' }, signal, check: false });
      if (r.exitCode >= 4 && !/SQL1032N/.test(r.output)) {
        const { toolError } = await import('./db2-clp.js');
        throw toolError(r, argv.activeDatabases(s).join(' '), { code: 'restore', what: 'cannot tell whether the database is active', context: { ...ctx, phase: 'check' } });
      }
      const active = [...r.output.matchAll(/^\s*Database name\s*=\s*(\S+)/gm)].map((m) => m[1]!.toUpperCase());
      if (active.includes(s.database.toUpperCase())) {
        throw new EbrError('inUse', `database ${s.database} is active: an in-place restore replaces its containers and database directory`, {
          hint: `as the instance owner: db2 force applications all; db2 deactivate database ${s.database} (or db2stop force; db2start), then restore; or restore --to DIR`,
          context: { ...ctx, phase: 'check' },
        });
      }
    },

    destinationOf,

    async finish(signal, files: RestoreFiles) {
      const notes: string[] = [];
      if (toDir) {
        await files.writeFile(relocateFile!, relocateConfig(), { mode: 0o644 });
        notes.push(`nothing was run: on the instance that is to use ${toDir}, run ${argv.inidb(s, as, relocateFile).join(' ')}${rollforward ? `, then ${rollforward.join(' ')}` : ''}`);
        return { notes, details: { relocateConfig: relocateFile } };
      }
      if (as !== 'snapshot') notes.push(`the log path was left as it is: roll-forward reads the database's own active and archived logs`);
      const fctx = { ...ctx, phase: 'finish' };
      await runTool(s, argv.inidb(s, as), { code: 'restore', what: `db2inidb could not initialize ${s.database} AS ${as.toUpperCase()}`, context: fctx, signal });
      notes.push(`initialized: ${argv.inidb(s, as).join(' ')}`);
      if (rollforward) {
        const r = await runTool(s, rollforward, { code: 'restore', what: `cannot roll ${s.database} forward`, context: fctx, signal });
        notes.push(`rolled forward${until ? ` to ${until} (local time)` : ' to the end of the logs'} and stopped: ${rollforward.slice(1).join(' ')}`);
        const last = /Last committed transaction\s*=\s*(.*)$/m.exec(r.output)?.[1]?.trim();
        return { notes, details: { initializedAs: as, rollforward: rollforward.slice(1).join(' '), ...(last ? { lastCommitted: last } : {}) } };
      }
      if (as === 'standby') notes.push(`left in roll-forward pending as a standby: ROLLFORWARD DATABASE ${s.database} TO END OF LOGS (AND STOP to take over)`);
      return { notes, details: { initializedAs: as } };
    },
  };
}
