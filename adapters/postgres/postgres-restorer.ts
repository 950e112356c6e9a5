/**
 * Restoring a PostgreSQL cluster from a base backup, as the PostgreSQL manual's recovery recipe says:
 * the server stopped, the files put back, pg_wal empty, backup_label and tablespace_map written,
 * pg_tblspc links pointing at the (possibly remapped) tablespaces, recovery.signal and a
 * restore_command that fetches WAL from ebr's log archive. Starting the server then replays WAL to the
 * target and opens the cluster for writes.
 *
 * Under `--to DIR`, DIR becomes the data directory and tablespace `<oid>` goes to
 * `DIR/pg_tblspc_targets/<oid>`; the copy gets archive_mode = off so it never writes into the
 * original's log archive.
 */
import { noteStep, recordingFiles } from '../../src/plan.js';
import { readlinkSync, realpathSync } from 'node:fs';
import { lstat, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ArchivedChunk, FileAttributes, InstanceContext, RestoreFiles, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { confQuote, walCommand } from './ebr-command.js';
import type { PostgresSettings } from './postgres-config.js';
import { clusterSpace, type ClusterLayout } from './postgres-layout.js';
import { runningPostmaster } from './postgres-postmaster.js';

/** Databases every partial restore writes in full: the server and CREATE DATABASE need them. */
const alwaysRestored = new Set(['template0', 'template1', 'postgres']);
export const tablespaceTargetsDir = 'pg_tblspc_targets';
const autoConfBegin = '# --- recovery settings written by ebr restore; remove this block after recovery ---';
const autoConfEnd = '# --- end of ebr restore settings ---';

type PlanSpace = RestorePlan['spaces'][number];

export function postgresRestorer(instance: InstanceContext<PostgresSettings>, plan: RestorePlan): Restorer {
  const cluster = plan.spaces.find((s) => s.name === clusterSpace);
  if (!cluster?.details?.dataDirectory) {
    throw new EbrError('restore', `backup ${plan.backupId} has no ${clusterSpace} space with its data directory; it was not taken by the postgres adapter`, {
      context: { instance: plan.instance, backupId: plan.backupId },
    });
  }
  const layout = cluster.details as unknown as ClusterLayout;
  const dataDir = plan.targetDir ?? layout.dataDirectory;
  const ctx = { instance: plan.instance, backupId: plan.backupId, phase: 'restore' };
  const datnameOf = (s: PlanSpace) => (s.details?.datname as string | undefined) ?? s.name;

  if (plan.mode === 'partial') {
    const templates = plan.spaces.filter((s) => plan.requested.includes(s.name) && (s.details?.template === true || s.name === clusterSpace));
    if (templates.length) {
      throw new EbrError('criticalSpace', `${templates.map((s) => s.name).join(', ')} cannot be restored on its own: the cluster space and the template databases are always restored with any database`, {
        hint: `name only the databases you want back: ${plan.spaces.filter((s) => s.details?.role === 'database' && !alwaysRestored.has(datnameOf(s))).map((s) => s.name).join(', ') || '(none)'}`,
        context: { ...ctx, space: templates[0]!.name },
      });
    }
  }
  const toWrite = new Set(
    plan.mode === 'full'
      ? plan.spaces.map((s) => s.name)
      : plan.spaces.filter((s) => s.name === clusterSpace || s.critical || alwaysRestored.has(datnameOf(s)) || plan.requested.includes(s.name)).map((s) => s.name),
  );
  const placeholders = plan.spaces.filter((s) => !toWrite.has(s.name));

  const locationOf = (oid: number): string => {
    if (plan.targetDir) return path.join(plan.targetDir, tablespaceTargetsDir, String(oid));
    const ts = layout.tablespaces.find((t) => t.oid === oid);
    if (!ts?.location) throw new EbrError('restore', `the backup lists files of tablespace ${oid}, which it does not describe`, { context: ctx });
    return ts.location;
  };
  const destinationOf = (c: Pick<ArchivedChunk, 'name'>): string => {
    const parts = c.name.split('/');
    if (path.isAbsolute(c.name) || parts.some((p) => p === '..' || p === '.' || p === '')) {
      throw new EbrError('digestMismatch', `the archive holds a member named ${JSON.stringify(c.name)}, which would land outside the data directory`, { context: { ...ctx, member: c.name } });
    }
    const m = /^pg_tblspc\/(\d+)\/(.+)$/.exec(c.name);
    return m ? path.join(locationOf(Number(m[1])), m[2]!) : path.join(dataDir, c.name);
  };
  const allChunks = plan.spaces.flatMap((s) => s.chunks);
  const pgVersion = cluster.chunks.find((c) => c.name === 'PG_VERSION');
  const owner: FileAttributes | undefined = pgVersion?.uid !== undefined && pgVersion.gid !== undefined ? { uid: pgVersion.uid, gid: pgVersion.gid } : undefined;
  const wal = walLayout(dataDir, plan, cluster.chunks);

  return {
    spacesToWrite() {
      // The cluster space first: its directories hold everything else.
      return [clusterSpace, ...plan.spaces.filter((s) => s.name !== clusterSpace && toWrite.has(s.name)).map((s) => s.name)];
    },

    async check() {
      for (const c of allChunks) destinationOf(c);
      if (!plan.meta.files?.backup_label) {
        throw new EbrError('restore', `backup ${plan.backupId} has no backup_label in meta/: it cannot be recovered`, {
          hint: 'the archive is incomplete; restore another backup (`ebr list`)',
          context: ctx,
        });
      }
      const stoppedAt = plan.meta.details?.stoppedAt ? new Date(String(plan.meta.details.stoppedAt)) : undefined;
      if (plan.until && stoppedAt && plan.until.getTime() < stoppedAt.getTime()) {
        throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} became consistent (${stoppedAt.toISOString()}); PostgreSQL cannot stop recovery there`, {
          hint: 'pick an older backup with --backup ID (see `ebr list`), or a later --until',
          context: ctx,
        });
      }
      const pm = await runningPostmaster(dataDir);
      if (pm) {
        throw new EbrError('inUse', `PostgreSQL is running on ${dataDir} (postmaster pid ${pm})`, {
          hint: `stop it first (as postgres: pg_ctl -D ${dataDir} stop -m fast, or systemctl stop postgresql), or restore elsewhere with --to DIR`,
          context: { ...ctx, path: dataDir },
        });
      }
      if (plan.targetDir) {
        const entries = await readdir(plan.targetDir).catch(() => [] as string[]);
        if (entries.length > 0 && !entries.includes('PG_VERSION')) {
          throw new EbrError('usage', `${plan.targetDir} is not empty and is not a PostgreSQL data directory; ebr replaces everything in the directory it restores into`, {
            hint: 'restore into an empty or new directory, or into a stopped cluster\'s data directory',
            context: { ...ctx, path: plan.targetDir },
          });
        }
      }
    },

    destinationOf,

    // finish changes files only through RestoreFiles and runs nothing: its plan is finish on a recorder.
    async plan(signal) {
      const recorder = recordingFiles();
      const outcome = await this.finish(signal, recorder);
      return [
        noteStep('check', `no postmaster may run on ${dataDir}${plan.targetDir ? `; ${plan.targetDir} must be empty or a PostgreSQL data directory` : ''}`),
        ...recorder.steps,
        ...outcome.notes.map((n) => noteStep('finish', n)),
      ];
    },

    extraRoots: () => wal.roots,

    async finish(_signal, files) {
      const notes: string[] = [];
      // 1. Databases not chosen: sparse zero files of the right size, so that recovery finds every file it replays into.
      let sparse = 0;
      for (const s of placeholders) {
        for (const c of s.chunks) {
          const dest = destinationOf(c);
          if (c.type === 'directory') {
            await files.mkdir(dest, attrsOf(c, 0o700));
          } else if (c.type === 'file') {
            await files.writeSparse(dest, c.size, attrsOf(c, 0o600));
            sparse++;
          }
        }
      }
      // 2. Everything in the directories that is not in the backup goes: files of relations created later, stale slots, old labels.
      const expected = new Set(allChunks.map(destinationOf));
      const tablespaceRoots = layout.tablespaces.filter((t) => t.location).map((t) => locationOf(t.oid));
      const keepExtra = new Set<string>([path.join(dataDir, 'pg_wal'), path.join(dataDir, tablespaceTargetsDir), ...tablespaceRoots]);
      if (layout.logDirectory) keepExtra.add(path.join(dataDir, layout.logDirectory));
      let removed = await removeUnexpected(files, dataDir, expected, keepExtra);
      for (const root of tablespaceRoots) removed += await removeUnexpected(files, path.join(root, layout.tablespaceDir), expected, new Set());
      // 3. Tablespace links point at the restored tablespaces (remapped under --to); the location directories belong to postgres.
      for (const ts of layout.tablespaces.filter((t) => t.location)) {
        const link = path.join(dataDir, 'pg_tblspc', String(ts.oid));
        const target = locationOf(ts.oid);
        await files.mkdir(target, { ...(owner ?? {}), mode: 0o700 });
        if (plan.targetDir) await files.setAttributes(path.join(plan.targetDir, tablespaceTargetsDir), { ...(owner ?? {}), mode: 0o700 });
        const st = await lstat(link).catch(() => undefined);
        if (st?.isDirectory() && !plan.targetDir) continue; // an in-place tablespace stays a directory
        if (st?.isSymbolicLink() && (await readlinkOr(link)) === target) continue;
        await files.symlink(target, link, owner ?? {});
      }
      // 4. An empty pg_wal: WAL comes from the archive. What was there is set aside, not deleted (it may hold unarchived WAL).
      const walAside = await emptyWalDir(files, wal, plan, owner);
      if (walAside) notes.push(`the old contents of pg_wal were moved to ${walAside}; remove them once the restored cluster runs`);
      // The data directory itself is no chunk: under --to it was just made, by whoever runs ebr. The server insists on 0700/0750 and its own user.
      await files.setAttributes(dataDir, { ...(owner ?? {}), mode: layout.dataDirectoryMode ?? 0o700 });
      // 5. backup_label, tablespace_map, recovery.signal and the recovery settings.
      await files.writeFile(path.join(dataDir, 'backup_label'), plan.meta.files!.backup_label!, owner);
      const map = plan.meta.files?.tablespace_map;
      if (map && String(map).trim()) await files.writeFile(path.join(dataDir, 'tablespace_map'), remapTablespaces(String(map), plan.targetDir ? locationOf : undefined), owner);
      await files.writeFile(path.join(dataDir, 'recovery.signal'), '', owner);
      const restoreCommand = walCommand('get', instance.name, instance.configFile, ['%f', '%p']);
      const settings: Array<[string, string]> = [['restore_command', restoreCommand]];
      if (plan.until) {
        settings.push(['recovery_target_time', pgTime(plan.until)], ['recovery_target_action', 'promote']);
      } else if (plan.toBackupEnd) {
        // As soon as the backup is consistent: a group's members at the group's instant, not at the end of the archive.
        settings.push(['recovery_target', 'immediate'], ['recovery_target_action', 'promote']);
      }
      if (plan.targetDir) settings.push(['archive_mode', 'off']);
      const autoConf = path.join(dataDir, 'postgresql.auto.conf');
      const before = await readFile(autoConf, 'utf8').catch(() => '');
      await files.writeFile(autoConf, withRecoverySettings(before, settings, plan.backupId), owner);

      notes.unshift(`restored backup ${plan.backupId} into ${dataDir}${layout.tablespaces.some((t) => t.location) ? ` (tablespaces: ${layout.tablespaces.filter((t) => t.location).map((t) => `${t.name} → ${locationOf(t.oid)}`).join(', ')})` : ''}`);
      if (placeholders.length) {
        notes.push(
          `databases not chosen were restored as empty placeholder files (${sparse} sparse files): ${placeholders.map((s) => datnameOf(s)).join(', ')}; after recovery they cannot be read — drop them (DROP DATABASE)`,
        );
      }
      notes.push(
        plan.until
          ? `recovery replays WAL from the log archive up to ${pgTime(plan.until)}, then promotes and opens for writes`
          : plan.toBackupEnd
            ? 'recovery replays WAL only up to where the backup is consistent (recovery_target = immediate), then promotes and opens for writes'
            : 'recovery replays all WAL in the log archive, then opens for writes on a new timeline',
      );
      if (plan.targetDir) notes.push('archive_mode is off in the restored copy so it never writes into the original\'s log archive; give it its own port: pg_ctl -D DIR -o "-p PORT" start');
      notes.push(`start it as the postgres OS user: pg_ctl -D ${dataDir} -l logfile start; recovery settings are in ${autoConf}`);
      return {
        notes,
        details: { dataDirectory: dataDir, restoreCommand, ...(plan.until ? { recoveryTargetTime: pgTime(plan.until) } : {}), placeholderFiles: sparse, removedFiles: removed },
      };
    },
  };
}

/** Sets aside what is under `dir` and not expected (recursing into expected directories); returns how many entries went. */
async function removeUnexpected(files: RestoreFiles, dir: string, expected: Set<string>, keep: Set<string>): Promise<number> {
  let removed = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    // ebr's own snapshots, staging, and this restore's set-aside files are not the restore's to remove.
    if (keep.has(p) || e.name.startsWith('.ebr-') || /\.ebr-(old|restore)-/.test(e.name)) continue;
    if (!expected.has(p)) {
      await files.setAside(p);
      removed++;
    } else if (e.isDirectory()) {
      removed += await removeUnexpected(files, p, expected, keep);
    }
  }
  return removed;
}

interface WalLayout {
  dir: string;
  /** In place with pg_wal a link (as the backup recorded it): the directory it points at, and where its old contents go. */
  linked?: { real: string; aside: string };
  roots: string[];
}

/** pg_wal of the restored cluster; a link is followed only when it is the one the backup recorded. */
function walLayout(dataDir: string, plan: RestorePlan, clusterChunks: ArchivedChunk[]): WalLayout {
  const dir = path.join(dataDir, 'pg_wal');
  const recorded = clusterChunks.find((c) => c.name === 'pg_wal' && c.type === 'symlink')?.linkTarget;
  if (plan.targetDir || !recorded) return { dir, roots: [] };
  let live: string | undefined;
  try {
    live = readlinkSync(dir);
  } catch {
    return { dir, roots: [] };
  }
  if (live !== recorded) return { dir, roots: [] };
  const real = realpathSync(dir);
  const aside = `${real}.ebr-old-${plan.backupId}`;
  return { dir, linked: { real, aside }, roots: [real, aside] };
}

/** pg_wal as an empty directory with archive_status; what was in it is kept aside (it may hold WAL never archived). */
async function emptyWalDir(files: RestoreFiles, wal: WalLayout, plan: RestorePlan, owner: FileAttributes | undefined): Promise<string | undefined> {
  const dirAttrs = { ...(owner ?? {}), mode: 0o700 };
  const st = await lstat(wal.dir).catch(() => undefined);
  let aside: string | undefined;
  if (wal.linked) {
    for (const e of await meaningfulWal(wal.linked.real)) aside = path.dirname(await files.setAside(path.join(wal.linked.real, e), { keep: true, as: path.join(wal.linked.aside, e) }));
  } else if (st?.isSymbolicLink()) {
    await files.setAside(wal.dir); // under --to, or a link the backup did not record: a plain directory instead
  } else if (st && (await meaningfulWal(wal.dir)).length > 0) {
    aside = await files.setAside(wal.dir, { keep: true, as: path.join(path.dirname(wal.dir), `pg_wal.ebr-old-${plan.backupId}`) });
  }
  const real = wal.linked?.real ?? wal.dir;
  await files.mkdir(real, dirAttrs);
  await files.mkdir(path.join(real, 'archive_status'), dirAttrs);
  return aside;
}

async function meaningfulWal(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir).catch(() => [] as string[])) {
    if (e === 'archive_status' && (await readdir(path.join(dir, e)).catch(() => [])).length === 0) continue;
    out.push(e);
  }
  return out;
}

async function readlinkOr(p: string): Promise<string | undefined> {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

function attrsOf(c: { mode?: number; uid?: number; gid?: number }, mode: number): FileAttributes {
  return { mode: c.mode ?? mode, ...(c.uid !== undefined ? { uid: c.uid } : {}), ...(c.gid !== undefined ? { gid: c.gid } : {}) };
}

/** tablespace_map lines are `<oid> <path>`; under --to each path becomes the remapped location. */
export function remapTablespaces(map: string, locationOf?: (oid: number) => string): string {
  if (!locationOf) return map;
  return map
    .split('\n')
    .map((line) => {
      const m = /^(\d+) /.exec(line);
      return m ? `${m[1]} ${locationOf(Number(m[1]))}` : line;
    })
    .join('\n');
}

/** postgresql.auto.conf with ebr's block replaced: the server reads the last setting of a name, so the block goes last. */
export function withRecoverySettings(text: string, settings: Array<[string, string]>, backupId: string): string {
  const start = text.indexOf(autoConfBegin);
  const end = text.indexOf(autoConfEnd);
  let base = start >= 0 && end > start ? text.slice(0, start) + text.slice(end + autoConfEnd.length).replace(/^\n/, '') : text;
  if (base && !base.endsWith('\n')) base += '\n';
  const lines = [autoConfBegin, `# backup ${backupId}`, ...settings.map(([k, v]) => `${k} = ${confQuote(v)}`), autoConfEnd];
  return `${base}${lines.join('\n')}\n`;
}

/** A time PostgreSQL parses unambiguously: UTC with microseconds. */
export function pgTime(d: Date): string {
  return `${d.toISOString().replace('T', ' ').replace('Z', '')}000+00`;
}
