/**
 * Restoring T-SQL snapshot backups, as Microsoft's snapshot-backup article lays it out: the database
 * is taken offline so the server lets go of its files, the files go back (to their own paths, or
 * under --to DIR with MOVE), then `RESTORE DATABASE … WITH METADATA_ONLY, NORECOVERY` from the .bkm
 * attaches them as the backup, the log backups from ebr's archive roll forward (`RESTORE LOG …
 * NORECOVERY`), and the last one (with STOPAT under --until) recovers the database.
 *
 * A partial restore takes filegroups: PRIMARY and the log always come with them (the database cannot
 * start without), and `FILEGROUP = …, PARTIAL` restores only those; the others stay offline.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArchivedChunk, InstanceContext, PlanStep, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { MssqlSettings } from './mssql-config.js';
import { openConnection } from './mssql-connection.js';
import { databasesOf } from './mssql-discovery.js';
import { cmpLsn, readLogIndex, storeOf, type LogBackupEntry } from './mssql-logs.js';
import { metaBkmName } from './mssql-plan.js';
import * as q from './mssql-queries.js';

type PlanSpace = RestorePlan['spaces'][number];
interface BackupSet {
  database: string;
  lastLsn: string;
  finishedAt: string;
}
interface DatabaseSteps {
  db: string;
  logs: LogBackupEntry[];
  statements: string[];
}

export function mssqlRestorer(instance: InstanceContext<MssqlSettings>, plan: RestorePlan): Restorer {
  const s = instance.settings;
  const ctx = { instance: plan.instance, backupId: plan.backupId, phase: 'restore' };
  const sets = (plan.meta.details?.backupSets ?? []) as BackupSet[];
  const group = plan.meta.details?.group === true;
  const bkmData = plan.meta.files?.[metaBkmName];
  if (!bkmData || !sets.length) {
    throw new EbrError('restore', `backup ${plan.backupId} has no ${metaBkmName} or msdb record in its metadata; it was not taken by the mssql adapter`, { hint: 'restore another backup (`ebr list`)', context: ctx });
  }
  const dbOf = (sp: Pick<PlanSpace, 'details'>) => String(sp.details?.database ?? '');
  const requestedSpaces = plan.spaces.filter((sp) => plan.requested.includes(sp.name));
  const dbs = plan.mode === 'full' ? databasesOf(plan.spaces) : databasesOf(requestedSpaces);
  // PRIMARY and the log come with any filegroup of their database: it cannot start without them.
  const written = plan.spaces.filter((sp) => plan.mode === 'full' || plan.requested.includes(sp.name) || (dbs.includes(dbOf(sp)) && sp.critical));
  const scratch = instance.resolvePath(s.backupDir);
  const bkm = path.join(scratch, `ebr-restore-${q.safeName(plan.instance)}-${q.safeName(plan.backupId)}.bkm`);
  const logFile = (e: LogBackupEntry) => path.join(scratch, `ebr-restore-${q.safeName(plan.instance)}-${e.name}`);

  const destinationOf = (c: Pick<ArchivedChunk, 'name' | 'path'>): string => {
    const parts = c.name.split('/');
    if (path.isAbsolute(c.name) || parts.some((p) => p === '..' || p === '.' || p === '')) {
      throw new EbrError('digestMismatch', `the archive holds a member named ${JSON.stringify(c.name)}, which would land outside the restore directory`, { context: { ...ctx, member: c.name } });
    }
    return plan.targetDir ? path.join(plan.targetDir, ...parts) : c.path;
  };

  /** What each database's restore sends, and which log backups it needs; refuses a broken chain or an --until it cannot reach. */
  let computed: Promise<DatabaseSteps[]> | undefined;
  const steps = () => (computed ??= computeSteps());
  async function computeSteps(): Promise<DatabaseSteps[]> {
    const index = await readLogIndex(storeOf(instance));
    return dbs.map((db) => {
      const set = sets.find((x) => x.database.toLowerCase() === db.toLowerCase());
      if (!set) throw new EbrError('restore', `backup ${plan.backupId} has no msdb record of ${db}`, { context: { ...ctx, database: db } });
      const logs = chainAfter(db, set, index.filter((e) => e.database === db));
      const spaces = written.filter((sp) => dbOf(sp) === db);
      const filegroups = plan.mode === 'partial' ? ['PRIMARY', ...spaces.map((sp) => sp.details?.filegroup).filter((f): f is string => typeof f === 'string' && f !== 'PRIMARY')] : undefined;
      const moves = plan.targetDir ? spaces.flatMap((sp) => sp.chunks).map((c) => ({ logical: String(c.details?.logicalName), to: destinationOf(c) })) : undefined;
      const statements = [q.restoreDatabase({ db, bkm, group, ...(filegroups ? { filegroups } : {}), ...(moves ? { moves } : {}), recovery: false })];
      logs.forEach((e, i) => {
        const last = i === logs.length - 1;
        statements.push(q.restoreLog(db, logFile(e), { ...(last && plan.until ? { stopAt: q.sqlTime(plan.until) } : {}), recovery: last }));
      });
      if (!logs.length) statements.push(q.recoverDatabase(db));
      return { db, logs, statements };
    });
  }

  function chainAfter(db: string, set: BackupSet, entries: LogBackupEntry[]): LogBackupEntry[] {
    const after = entries.filter((e) => cmpLsn(e.lastLsn, set.lastLsn) > 0);
    const dctx = { ...ctx, database: db };
    if (plan.until && plan.until.getTime() < new Date(set.finishedAt).getTime()) {
      throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} of ${db} finished (${set.finishedAt})`, { hint: 'pick an older backup with --backup ID (see `ebr list`), or a later --until', context: dctx });
    }
    if (after[0] && cmpLsn(after[0].firstLsn, set.lastLsn) > 0) {
      throw new EbrError('restore', `the log backups of ${db} start at LSN ${after[0].firstLsn}, after backup ${plan.backupId} ends (LSN ${set.lastLsn}): the log chain is broken`, {
        hint: 'a log backup taken outside ebr is missing from the archive; restore without --until from a later backup, or add the missing log backup by hand',
        context: dctx,
      });
    }
    for (let i = 1; i < after.length; i++) {
      if (cmpLsn(after[i - 1]!.lastLsn, after[i]!.firstLsn) !== 0) {
        throw new EbrError('restore', `the log chain of ${db} has a gap between ${after[i - 1]!.name} and ${after[i]!.name}`, { hint: 'restore to a time before the gap with --until, or from a backup after it', context: dctx });
      }
    }
    if (!plan.until) return after;
    const reach = after.findIndex((e) => new Date(e.finishedAt).getTime() >= plan.until!.getTime());
    if (reach < 0) {
      throw new EbrError('usage', `the log backups of ${db} in the archive end at ${after.at(-1)?.finishedAt ?? set.finishedAt}, before --until ${plan.until.toISOString()}`, {
        hint: `run \`ebr log sync --instance ${plan.instance}\` to take a log backup past that time, or choose an earlier --until`,
        context: dctx,
      });
    }
    return after.slice(0, reach + 1);
  }

  const checkStatements = () => dbs.map((db) => q.takeOffline(db));
  /** offline: check took the databases offline and no RESTORE ran yet; restoring: finish sent RESTORE statements. */
  let serverSide: 'untouched' | 'offline' | 'restoring' | 'done' = 'untouched';

  async function runAll(statements: string[], phase: string) {
    const conn = await openConnection(s, { instance: plan.instance, requestTimeout: s.restoreRequestTimeout });
    try {
      for (const sql of statements) await conn.run(sql, 'restore', { ...ctx, phase });
    } finally {
      await conn.close();
    }
  }

  return {
    spacesToWrite: () => written.map((sp) => sp.name),

    // The server reads the .bkm and the log backups from backupDir: they are written there for the
    // restore's statements and removed afterwards (never beside the restored files).
    extraRoots: () => [scratch],

    async plan() {
      const out: PlanStep[] = checkStatements().map((text) => ({ phase: 'check', kind: 'sql', text }));
      out.push({ phase: 'finish', kind: 'write', text: bkm });
      for (const d of await steps()) {
        for (const e of d.logs) out.push({ phase: 'finish', kind: 'write', text: logFile(e) });
        for (const text of d.statements) out.push({ phase: 'finish', kind: 'sql', text });
      }
      return out;
    },

    async check() {
      for (const sp of written) for (const c of sp.chunks) destinationOf(c);
      await steps();
      // The server holds its files open while the database is online; offline it lets go of them.
      serverSide = 'offline';
      await runAll(checkStatements(), 'check');
    },

    async undo() {
      if (serverSide === 'offline') {
        await runAll(dbs.map((db) => q.bringOnline(db)), 'undo');
        serverSide = 'untouched';
        return [];
      }
      if (serverSide === 'restoring') {
        return dbs.map((db) => `${db} may be left RESTORING (a RESTORE statement failed): restore it again, or bring the old one back with RESTORE DATABASE [${db}] WITH RECOVERY`);
      }
      return [];
    },

    destinationOf,

    async finish(signal) {
      const all = await steps();
      await mkdir(scratch, { recursive: true });
      const temps = [bkm, ...all.flatMap((d) => d.logs.map(logFile))];
      try {
        await writeFile(bkm, bkmData, { mode: 0o640 });
        const store = storeOf(instance);
        for (const d of all) {
          for (const e of d.logs) {
            if (!(await store.get(e.name, logFile(e), signal))) {
              throw new EbrError('restore', `log backup ${e.name} is listed in the archive but its file is missing`, { hint: 'restore to a time before it with --until', context: { ...ctx, database: d.db } });
            }
          }
        }
        serverSide = 'restoring';
        await runAll(all.flatMap((d) => d.statements), 'finish');
        serverSide = 'done';
      } finally {
        for (const f of temps) await rm(f, { force: true });
      }
      const notes = [`restored ${dbs.join(', ')} from backup ${plan.backupId}${plan.targetDir ? ` into ${plan.targetDir}` : ''}`];
      for (const d of all) notes.push(`${d.db}: ${d.logs.length} log backup(s) applied${plan.until ? `, stopped at ${plan.until.toISOString()}` : ''}; the database is online`);
      if (plan.mode === 'partial') {
        const others = plan.spaces.filter((sp) => dbs.includes(dbOf(sp)) && !written.includes(sp)).map((sp) => sp.name);
        if (others.length) notes.push(`filegroups not restored stay offline until restored: ${others.join(', ')}`);
      }
      return { notes, details: { databases: dbs, logBackups: Object.fromEntries(all.map((d) => [d.db, d.logs.map((e) => e.name)])) } };
    },
  };
}
