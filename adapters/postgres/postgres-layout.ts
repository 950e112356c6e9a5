/**
 * Which file of a data directory belongs to which space. One space per database (its `base/<oid>`
 * and its `<oid>` directory in each tablespace), and the critical `cluster` space for everything else
 * the server needs. What is left out follows pg_basebackup and pgBackRest: files the server rebuilds or
 * must not find after a restore (postmaster.pid, pg_internal.init, temp files, replication slots, the
 * contents of pg_wal — WAL comes from the log archive).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { chunkOf } from '../../src/chunks.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk, Space } from '../../src/model.js';

export const clusterSpace = 'cluster';

export interface DatabaseInfo {
  oid: number;
  name: string;
  template: boolean;
}

export interface TablespaceInfo {
  oid: number;
  name: string;
  /** Where pg_tblspc/<oid> points; empty for pg_default and pg_global. */
  location: string;
}

export interface ClusterLayout {
  dataDirectory: string;
  /** `PG_<major>_<catversion>`: the directory a tablespace holds for this server version. */
  tablespaceDir: string;
  databases: DatabaseInfo[];
  tablespaces: TablespaceInfo[];
  /** log_directory when it lies inside the data directory (relative): its extra files survive an in-place restore. */
  logDirectory?: string;
  /** Permission bits of the data directory itself (0700, or 0750 with group access); restore puts them back. */
  dataDirectoryMode?: number;
}

/** Directories whose contents the server rebuilds; the directory itself is kept (pg_basebackup's excludeDirContents). */
const contentsLeftOut = new Set(['pg_dynshmem', 'pg_notify', 'pg_replslot', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans', 'pg_wal']);
/** Top-level files never copied. */
const topFilesLeftOut = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'tablespace_map.old',
  'recovery.signal',
  'standby.signal',
  'recovery.conf',
  'recovery.done',
  'backup_manifest',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
]);

/** Names left out at any depth. */
export function leftOut(name: string): boolean {
  return (
    name.startsWith('pgsql_tmp') ||
    name.startsWith('pg_internal.init') ||
    // ebr's own staging, reflink probes and btrfs snapshots may sit inside the data directory.
    name.startsWith('.ebr-') ||
    name.includes('.ebr-restore-') ||
    name.includes('.ebr-old-') ||
    name.includes('.ebr-sparse-')
  );
}

/** Temporary relations (`t<backend>_<relfilenode>[_fork][.segment]`) die with their session; the server removes them at start. */
const tempRelation = /^t\d+_\d+(_(fsm|vm|init))?(\.\d+)?$/;

/** A database's space name: its own when it is a safe file name, else the safe part and its oid. */
export function spaceNameOf(db: DatabaseInfo, taken: Set<string>): string {
  const safe = /^[A-Za-z0-9_.@+-]+$/.test(db.name) && db.name !== '.' && db.name !== '..';
  let name = safe ? db.name : `${db.name.replace(/[^A-Za-z0-9_.@+-]/g, '_').replace(/^\.+/, '_')}@${db.oid}`;
  if (taken.has(name) || name === clusterSpace) name = `db@${db.oid}`;
  taken.add(name);
  return name;
}

export async function discoverLayout(layout: ClusterLayout, instance: string, signal?: AbortSignal): Promise<Space[]> {
  const data = layout.dataDirectory;
  layout.dataDirectoryMode = (await stat(data)).mode & 0o777;
  const taken = new Set<string>([clusterSpace]);
  const spaceByOid = new Map<number, string>();
  const spaces = new Map<string, Space>();
  const cluster: Space = {
    name: clusterSpace,
    critical: true,
    kind: 'cluster',
    chunks: [],
    notes: [],
    details: { ...layout, role: 'cluster' },
  };
  spaces.set(clusterSpace, cluster);
  for (const db of layout.databases) {
    const name = spaceNameOf(db, taken);
    spaceByOid.set(db.oid, name);
    const template = db.name === 'template0' || db.name === 'template1';
    spaces.set(name, {
      name,
      // template0/1 are always restored with the cluster: CREATE DATABASE needs them.
      critical: template,
      kind: template ? 'template database' : 'database',
      chunks: [],
      details: { role: 'database', oid: db.oid, datname: db.name, template: db.template },
      ...(name !== db.name ? { notes: [`database "${db.name}"`] } : {}),
    });
  }
  const tablespaceRoots = new Set(layout.tablespaces.filter((t) => t.location).map((t) => path.resolve(t.location)));
  const spaceOfDbDir = (oid: string) => spaceByOid.get(Number(oid)) ?? clusterSpace;

  async function add(space: string, name: string, file: string, details?: Record<string, unknown>): Promise<Chunk | undefined> {
    const c = await chunkOf(space, name, file, details);
    if (c) spaces.get(space)!.chunks.push(c);
    return c;
  }

  /** Walks one directory; `spaceOf` decides the space of each entry from its name relative to PGDATA. */
  async function walk(dir: string, rel: string, space: string, inDbDir: boolean): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // dropped meanwhile: WAL replay recreates or drops it
      throw err;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const name = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(dir, e.name);
      if (leftOut(e.name)) continue;
      if (!rel && topFilesLeftOut.has(e.name)) continue;
      if (inDbDir && tempRelation.test(e.name)) continue;
      if (!e.isFile() && !e.isDirectory() && !e.isSymbolicLink()) continue; // sockets, fifos
      if (e.isDirectory() && tablespaceRoots.has(path.resolve(full))) continue; // a tablespace placed inside the data directory: walked as a tablespace
      if (!rel && e.name === 'pg_tblspc') {
        await add(clusterSpace, name, full);
        await walkTablespaceLinks(full);
        continue;
      }
      if (e.isSymbolicLink() || e.isFile()) {
        await add(space, name, full);
        continue;
      }
      // A directory.
      if (rel === 'base') {
        const owner = spaceOfDbDir(e.name);
        await add(owner, name, full, { database: Number(e.name) });
        await walk(full, name, owner, true);
        continue;
      }
      await add(space, name, full);
      if (!rel && contentsLeftOut.has(e.name)) {
        // pg_wal/archive_status is kept as a directory: the server expects it.
        if (e.name === 'pg_wal') await add(clusterSpace, 'pg_wal/archive_status', path.join(full, 'archive_status'));
        continue;
      }
      await walk(full, name, space, inDbDir);
    }
  }

  /** pg_tblspc/<oid> links are recorded as links; what they point at is walked under the link's name. */
  async function walkTablespaceLinks(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const rel = `pg_tblspc/${e.name}`;
      const full = path.join(dir, e.name);
      if (!/^\d+$/.test(e.name)) continue;
      const ts = layout.tablespaces.find((t) => String(t.oid) === e.name);
      if (!ts) {
        cluster.notes!.push(`pg_tblspc/${e.name} belongs to no tablespace the server lists; left out`);
        continue;
      }
      // A symlink normally; a directory for an in-place tablespace (allow_in_place_tablespaces).
      const link = await add(clusterSpace, rel, full, { tablespace: ts.oid });
      if (!link) continue;
      const versionDir = path.join(full, layout.tablespaceDir);
      const versionRel = `${rel}/${layout.tablespaceDir}`;
      const v = await add(clusterSpace, versionRel, versionDir, { tablespace: ts.oid });
      if (!v) {
        throw new EbrError('discover', `tablespace ${ts.name} has no ${layout.tablespaceDir} directory at ${ts.location}`, {
          hint: 'the tablespace directory belongs to another server version or is damaged; check pg_tblspc and the location',
          context: { instance, space: clusterSpace, path: versionDir },
        });
      }
      const dbDirs = await readdir(versionDir, { withFileTypes: true });
      dbDirs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const d of dbDirs) {
        const name = `${versionRel}/${d.name}`;
        const fullDb = path.join(versionDir, d.name);
        if (leftOut(d.name)) continue;
        if (d.isDirectory() && /^\d+$/.test(d.name)) {
          const owner = spaceOfDbDir(d.name);
          await add(owner, name, fullDb, { database: Number(d.name), tablespace: ts.oid });
          await walk(fullDb, name, owner, true);
        } else if (d.isFile() || d.isDirectory() || d.isSymbolicLink()) {
          await add(clusterSpace, name, fullDb, { tablespace: ts.oid });
          if (d.isDirectory()) await walk(fullDb, name, clusterSpace, false);
        }
      }
    }
  }

  await walk(data, '', clusterSpace, false);
  if (!cluster.chunks.some((c) => c.name === 'global/pg_control')) {
    throw new EbrError('discover', `${data} has no global/pg_control: it is not the data directory of a PostgreSQL cluster`, {
      hint: 'ebr must run on the database host, as a user that can read the data directory (root or postgres)',
      context: { instance, space: clusterSpace, path: data },
    });
  }
  if (cluster.notes!.length === 0) delete cluster.notes;
  return [...spaces.values()];
}
