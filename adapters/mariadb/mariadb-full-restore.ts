/**
 * Full restore: every space back into the server's own directories (server stopped) or into one data
 * directory under --to DIR; then a temporary server on the restored files runs crash recovery, takes
 * the archived binlogs from the backup's position up to --until (or to the end of the archive), starts
 * a new binlog history that keeps the GTID state, and shuts down cleanly. The user then starts the
 * real server on files that hold exactly the transactions committed up to that time.
 *
 * `--partial SCHEMA --to DIR` uses the same path with only the server space and those schemas: a
 * data directory that starts on its own, at the backup's time.
 */
import { chown, lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InstanceContext, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { faultPoint } from '../../src/util/fault.js';
import { replayChain, type ReplayPlan } from './binlog-chain.js';
import { archivedRanges } from './binlog-sync.js';
import type { LogStore } from '../../src/logs/log-store.js';
import { indexPrefix, nextBinlogNumber, renumberFirstBinlog, resetBinlogKeepingState, writeBinlogIndex } from './mariadb-binlog-history.js';
import type { MariadbSettings } from './mariadb-config.js';
import { replayBinlogs } from './mariadb-replay.js';
import { backupPointOf, destinationIn, ownerOf, restoredLayout, runAsUser, serverOptions } from './mariadb-restore-plan.js';
import { partialRecovery } from './mariadb-partial-restore.js';
import { checkLastBinlogInUse, expectRecoveryBinlogs, recoveryNote, recoveryReport, restoredBinlogs } from './mariadb-recovery.js';
import { assertNotInUse } from './mariadb-server-check.js';
import { displacedDir, displaceStrays } from './mariadb-strays.js';
import { startTempServer } from './mariadb-temp-server.js';
import { commandStep, noteStep, sqlStep } from '../../src/plan.js';
import { findTools, type Tools } from './mariadb-tools.js';

export function fullRestorer(instance: InstanceContext<MariadbSettings>, plan: RestorePlan, store: LogStore | undefined): Restorer {
  const point = backupPointOf(plan.meta, instance.name);
  const base = plan.targetDir;
  const layout = restoredLayout(point, base);
  const destinationOf = destinationIn(base);
  const written = plan.spaces.filter((s) => plan.requested.includes(s.name) || s.critical);
  const chunks = written.flatMap((s) => s.chunks);
  const ctx = { instance: instance.name, backupId: plan.backupId, phase: 'restore' };
  // The frozen binlogs: the temporary server's crash recovery reads them as its transaction log.
  const binlogChunks = restoredBinlogs(chunks, destinationOf, layout);
  // Roll forward only a whole server; a data directory with some schemas missing could not replay.
  const rollForward = plan.mode === 'full' && point.file !== undefined && !plan.toBackupEnd;
  // MySQL's window lets commits go on, so the frozen files hold transactions past the recorded position:
  // only GTID auto-skipping keeps a replay from applying them twice.
  const mysqlWithoutGtid = point.flavor === 'mysql' && !/^on$/i.test(point.settings.gtid_mode ?? '');
  let tools: Tools | undefined;
  let replay: ReplayPlan | undefined;
  const notes: string[] = [];

  return {
    spacesToWrite: (requested) => [...new Set([...plan.spaces.filter((s) => s.critical).map((s) => s.name), ...requested])],

    async check() {
      if (plan.mode === 'partial' && plan.until) {
        throw new EbrError('usage', '--until cannot be combined with --partial … --to DIR: binlogs replay into the whole server', {
          hint: 'restore the whole server with --to DIR --until TIME, or leave out --until',
          context: ctx,
        });
      }
      if (plan.until && point.serverEpoch && plan.until.getTime() / 1000 < Math.floor(point.serverEpoch)) {
        throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} was taken (${new Date(point.serverEpoch * 1000).toISOString()})`, {
          hint: 'pick an older backup (`ebr list`), or a later time',
          context: ctx,
        });
      }
      if (rollForward && plan.until && mysqlWithoutGtid) {
        throw new EbrError('usage', `backup ${plan.backupId} was taken with gtid_mode ${point.settings.gtid_mode || 'OFF'}: its files hold transactions past the recorded binlog position, and a replay without GTIDs would apply them twice`, {
          hint: 'restore without --until (to the backup\'s time), or use a backup taken with gtid_mode = ON',
          context: ctx,
        });
      }
      tools = findTools(point.flavor === 'mysql' ? 'mysql' : 'mariadb', instance.settings, instance.name);
      expectRecoveryBinlogs(point, layout, binlogChunks, ctx);
      // With --delta the directory may hold an earlier restore: ebr writes what differs, strays go aside.
      if (base && !plan.delta) {
        const present = await readdir(base).catch(() => [] as string[]);
        if (present.length > 0) {
          throw new EbrError('usage', `${base} is not empty; a restore with --to needs an empty or new directory`, { hint: 'give a new directory, or empty this one', context: { ...ctx, path: base } });
        }
      }
      await assertNotInUse(instance, chunks.map(destinationOf), base ? undefined : layout.pidFile, !base);
      if (rollForward && plan.until) {
        if (!store) {
          throw new EbrError('logArchive', 'no binlog archive is available to this restore, so --until cannot be honoured', {
            hint: 'binlogs are archived under <target.path>/<instance>/binlog by `ebr binlog sync` and after each backup',
            context: ctx,
          });
        }
        replay = replayChain(await archivedRanges(store), { file: point.file!, position: point.position! }, plan.until, instance.name);
      } else if (rollForward && mysqlWithoutGtid) {
        notes.push(`the backup was taken with gtid_mode ${point.settings.gtid_mode || 'OFF'}, so the binlogs are not replayed (transactions past the recorded position are already in its files): restored to the backup's time only`);
      } else if (rollForward && store) {
        const ranges = await archivedRanges(store);
        if (ranges.some((r) => r.name === point.file)) replay = replayChain(ranges, { file: point.file!, position: point.position! }, undefined, instance.name);
        else notes.push(`the binlog ${point.file} of the backup's position is not archived: restored to the backup's time only`);
      } else if (rollForward) {
        notes.push('no binlog archive was given to this restore: restored to the backup\'s time only');
      } else if (plan.toBackupEnd) {
        notes.push('restored to the backup\'s own binlog position, as a group restore asks: no binlog replayed');
      }
    },

    destinationOf,

    async plan() {
      const server = tools?.server ?? (point.flavor === 'mysql' ? 'mysqld' : 'mariadbd');
      return [
        noteStep('check', `${base ? `${base} must be empty` : `the server must be stopped (no ${layout.pidFile ?? 'pid file'})`}; the restored files must not be open`),
        ...(base ? [] : [noteStep('finish', `files made after the backup are moved aside to ${displacedDir(layout, plan.backupId)}`)]),
        { phase: 'finish', kind: 'write' as const, text: `the binlog index of ${layout.binlogBasename ?? '(no binlog)'} naming the ${binlogChunks.length} restored binlog(s)` },
        commandStep('finish', [server, `--datadir=${layout.datadir}`, ...serverOptions(point, layout, instance.settings, base !== undefined), ...(plan.mode === 'partial' ? partialRecovery : [])]),
        ...(rollForward && store
          ? [commandStep('finish', ['mariadb-binlog', `--start-position=${point.position}`, ...(plan.until ? [`--stop-datetime=${plan.until.toISOString()}`] : []), `${point.file} …`, '|', 'mariadb', '--socket=<temporary server>'])]
          : [noteStep('finish', 'no binlogs are replayed: restored to the backup\'s time')]),
        sqlStep('finish', point.flavor === 'mysql' ? 'SELECT @@global.gtid_executed AS gtid' : 'SELECT @@global.gtid_binlog_pos AS gtid'),
        ...(point.flavor === 'mariadb' && layout.binlogBasename ? [sqlStep('finish', 'SELECT @@global.gtid_binlog_state AS state'), sqlStep('finish', 'RESET MASTER'), sqlStep('finish', 'SET GLOBAL gtid_binlog_state = ?')] : []),
        noteStep('finish', 'the temporary server is shut down'),
      ];
    },

    extraRoots: () => (base && !plan.delta ? [] : [displacedDir(layout, plan.backupId)]),

    async finish(signal, files) {
      // Binlogs the old server wrote after the backup and never archived still own their numbers.
      const seen = [...binlogChunks, ...(layout.binlogBasename ? await binlogFilesIn(layout.binlogBasename) : [])];
      if (!base || plan.delta) {
        const restored = new Set<string>(chunks.map(destinationOf));
        const { dir, moved } = await displaceStrays(files, layout, restored, plan.backupId, instance.name);
        if (moved.length > 0) notes.push(`${moved.length} file(s) made after the backup were moved aside to ${dir}`);
      }
      // The old server's GTID state at its shutdown belongs to its binlogs, not to the restored ones; the
      // temporary server would read and delete it, so it is set aside (through the journal) first.
      const stateFile = layout.binlogBasename ? `${layout.binlogBasename}.state` : undefined;
      if (stateFile && !binlogChunks.includes(path.basename(stateFile)) && (await lstat(stateFile).catch(() => undefined))) await files.setAside(stateFile);
      const prefix = await indexPrefix(layout);
      const owner = ownerOf(plan);
      await writeBinlogIndex(files, layout, prefix, binlogChunks, owner ?? {});
      await checkLastBinlogInUse(layout, binlogChunks, ctx);

      const scratchRoot = instance.settings.scratchDir ? instance.resolvePath(instance.settings.scratchDir) : os.tmpdir();
      await mkdir(scratchRoot, { recursive: true });
      const run = await mkdtemp(path.join(scratchRoot, 'ebr-mariadb-run-'));
      const runAs = runAsUser(plan);
      // The temporary server runs as the files' owner: it needs its run directory, and a --to DIR that ebr made.
      if (owner && process.getuid?.() === 0) {
        await chown(run, owner.uid, owner.gid);
        if (base) await files.setAttributes(base, owner);
      }
      // What the temporary server creates (redo logs, Aria logs, a new binlog) goes if the restore is undone.
      for (const d of new Set([layout.datadir, layout.redoDir, layout.undoDir, layout.ariaDir, layout.binlogBasename && path.dirname(layout.binlogBasename)].filter((x): x is string => Boolean(x)))) await files.track(d);
      const details: Record<string, unknown> = {};
      try {
        throwIfAborted(signal, ctx);
        const server = await startTempServer({ program: tools!.server, datadir: layout.datadir, scratch: run, ...(runAs ? { runAs } : {}), options: [...serverOptions(point, layout, instance.settings, base !== undefined), ...(plan.mode === 'partial' ? partialRecovery : [])], instance: instance.name, onSpawn: (pid) => files.ownProcess(pid) }, signal);
        try {
          const recovery = await recoveryReport(server.errorLog);
          notes.push(recoveryNote(recovery, layout.datadir));
          details.preparedAtRecovery = recovery.prepared;
          faultPoint('temp-server');
          if (replay && store) {
            const fetched = path.join(run, 'binlogs');
            await mkdir(fetched);
            const r = await replayBinlogs({ tools: tools!, store, plan: replay, ...(plan.until ? { until: plan.until } : {}), socket: server.socket, scratch: fetched, instance: instance.name, signal });
            notes.push(`replayed ${r.files.join(', ')} from position ${replay.startPosition}${r.stopDatetime ? ` up to ${r.stopDatetime} UTC` : ' to the end of the archive'} in ${Math.round(r.ms)} ms`, ...replay.notes);
            Object.assign(details, { replayed: r.files, stopDatetime: r.stopDatetime, replayMs: Math.round(r.ms), reachesTarget: replay.reachesTarget });
          }
          const admin = await server.connect(signal);
          let state: string | undefined;
          try {
            const [pos] = await admin.query(point.flavor === 'mysql' ? 'SELECT @@global.gtid_executed AS gtid' : 'SELECT @@global.gtid_binlog_pos AS gtid');
            details.gtid = String(pos?.gtid ?? '');
            if (point.flavor === 'mariadb' && layout.binlogBasename) state = await resetBinlogKeepingState(admin);
          } finally {
            await admin.end();
          }
          await server.stop();
          if (state !== undefined) {
            const archived = store ? (await store.list(`${path.basename(layout.binlogBasename!)}.`)).map((e) => e.name).filter((n) => /\.\d+$/.test(n)) : [];
            const name = await renumberFirstBinlog(files, layout, prefix, nextBinlogNumber([...seen, ...archived]), owner ?? {});
            notes.push(`a new binlog history starts at ${name} with GTID state ${state || '(empty)'}, after every binlog the archive holds`);
            details.newBinlog = name;
          }
        } catch (err) {
          await server.kill();
          throw err;
        }
      } finally {
        await rm(run, { recursive: true, force: true });
      }
      notes.push(base ? `start a server on it with --datadir=${base}${layout.binlogBasename ? ` --log-bin=${layout.binlogBasename}` : ''} (and the restored settings)` : `start the server: systemctl start mariadb`);
      return { notes, details: { gtid: details.gtid, ...details } };
    },
  };
}

async function binlogFilesIn(basename: string): Promise<string[]> {
  const prefix = `${path.basename(basename)}.`;
  return (await readdir(path.dirname(basename)).catch(() => [] as string[])).filter((n) => n.startsWith(prefix) && /\.\d+$/.test(n));
}
