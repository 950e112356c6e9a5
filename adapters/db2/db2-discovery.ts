/**
 * Db2's files as spaces: one space per tablespace (its containers as chunks), the database directory
 * (DBPATH and the local database directory: configuration, log control files, history) and the log
 * path. Critical are the ones Db2 cannot start without: the catalog tablespace (SYSCATSPACE), the
 * database directory and the log path. The whole database is the unit of restore all the same —
 * db2inidb initializes all of it at once — so the restorer refuses any partial restore, saying why.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { chunkOf } from '../../src/chunks.js';
import { EbrError, throwIfAborted, type ErrorContext } from '../../src/errors.js';
import type { Chunk, Space } from '../../src/model.js';

export interface DbPath {
  partition: number;
  type: string;
  path: string;
}
export interface Tablespace {
  name: string;
  id: number;
  type: string;
  content: string;
}
export interface Container {
  tablespace: string;
  id: number;
  name: string;
  type: string;
}

export const databaseSpace = 'DATABASE';
export const logSpace = 'LOGS';
const temp = new Set(['SYSTEMP', 'USRTEMP']);

/** A chunk's archive name: its absolute path without the leading slash, so `--to DIR` puts it at DIR/<path>. */
export const chunkName = (p: string) => path.resolve(p).replace(/^\/+/, '');


/** Every directory, file and symlink under root (root included), skipping what other spaces own. */
async function walk(space: string, root: string, skip: string[], signal: AbortSignal, details?: Record<string, unknown>): Promise<Chunk[]> {
  const out: Chunk[] = [];
  const visit = async (p: string): Promise<void> => {
    throwIfAborted(signal);
    if (p !== root && skip.includes(p)) return;
    const c = await chunkOf(space, chunkName(p), p, details);
    if (!c) return;
    out.push(c);
    if (c.type !== 'directory') return;
    for (const e of (await readdir(p)).sort()) await visit(path.join(p, e));
  };
  await visit(root);
  return out;
}

export async function spacesOf(paths: DbPath[], tbsps: Tablespace[], conts: Container[], ctx: ErrorContext, signal: AbortSignal): Promise<Space[]> {
  const others = paths.filter((p) => p.partition !== 0);
  if (others.length) {
    throw new EbrError('discover', `the database has partitions other than 0 (${[...new Set(others.map((p) => p.partition))].join(', ')}): SET WRITE SUSPEND acts on one partition only`, {
      hint: 'ebr backs up single-partition Db2 databases (and pureScale, where one member suspends all); a partitioned database needs SET WRITE on every partition',
      context: ctx,
    });
  }
  const norm = (p: string) => path.resolve(p);
  const devices = conts.filter((c) => c.type.startsWith('DISK'));
  if (devices.length || paths.some((p) => p.type === 'TBSP_DEVICE' || p.type === 'LOGPATH_DEVICE')) {
    throw new EbrError('discover', `containers or logs on raw devices (${[...devices.map((c) => c.name), ...paths.filter((p) => p.type.endsWith('DEVICE')).map((p) => p.path)].join(', ')}): the db2 adapter copies files and directories only`, {
      hint: 'move the tablespace to file or automatic storage containers, or back this database up with BACKUP DATABASE … USE SNAPSHOT',
      context: ctx,
    });
  }
  const logRoots = paths.filter((p) => p.type === 'LOGPATH' || p.type === 'MIRRORLOGPATH').map((p) => norm(p.path));
  const contRoots = conts.map((c) => norm(c.name));
  const dbRoots = paths.filter((p) => p.type === 'DBPATH' || p.type === 'LOCAL_DB_DIRECTORY').map((p) => norm(p.path));
  const spaces: Space[] = [];
  const byName = new Map(tbsps.map((t) => [t.name, t]));
  const names = [...new Set([...tbsps.map((t) => t.name), ...conts.map((c) => c.tablespace)])];
  for (const name of names) {
    const t = byName.get(name);
    const isTemp = temp.has(t?.content ?? '');
    const chunks: Chunk[] = [];
    const notes: string[] = [];
    for (const c of conts.filter((x) => x.tablespace === name)) {
      const p = norm(c.name);
      const details = { containerId: c.id, containerType: c.type };
      if (c.type === 'PATH' && isTemp) {
        const d = await chunkOf(name, chunkName(p), p, details);
        if (d) chunks.push(d);
        notes.push(`${p}: temporary, the directory is kept and its contents left out`);
      } else if (c.type === 'PATH') chunks.push(...(await walk(name, p, [...logRoots, ...dbRoots], signal, details)));
      else {
        const f = await chunkOf(name, chunkName(p), p, details);
        if (!f) throw new EbrError('discover', `container ${p} of tablespace ${name} does not exist`, { hint: 'ebr must run on the database host, seeing the containers at the paths Db2 uses', context: { ...ctx, space: name, path: p } });
        chunks.push(f);
      }
    }
    if (name !== 'SYSCATSPACE') notes.push('restored only with the whole database (db2inidb initializes every tablespace together)');
    spaces.push({ name, critical: name === 'SYSCATSPACE', kind: 'tablespace', chunks, notes, details: { id: t?.id, type: t?.type, content: t?.content } });
  }
  const dbChunks: Chunk[] = [];
  for (const root of dbRoots) dbChunks.push(...(await walk(databaseSpace, root, [...logRoots, ...contRoots, ...dbRoots.filter((r) => r !== root)], signal)));
  const logChunks: Chunk[] = [];
  for (const root of logRoots) logChunks.push(...(await walk(logSpace, root, [...contRoots], signal)));
  const uniq = (cs: Chunk[]) => [...new Map(cs.map((c) => [c.name, c])).values()];
  spaces.push({
    name: databaseSpace,
    critical: true,
    kind: 'database directory',
    chunks: uniq(dbChunks),
    notes: ['configuration, log control files and recovery history: restored only with the whole database'],
    details: { paths: paths.filter((p) => !p.type.startsWith('TBSP_')).map((p) => ({ type: p.type, path: p.path })) },
  });
  spaces.push({
    name: logSpace,
    critical: true,
    kind: 'log path',
    chunks: uniq(logChunks),
    notes: ['frozen with the data (INCLUDE LOGS); a restore AS MIRROR or STANDBY keeps the primary\'s own logs, AS SNAPSHOT writes these back'],
  });
  const claimed = new Set([...spaces.flatMap((s) => s.chunks.map((c) => c.name))]);
  const unknown = paths.filter((p) => p.type.startsWith('TBSP_') && !claimed.has(chunkName(p.path)));
  if (unknown.length) {
    throw new EbrError('discover', `ADMIN_LIST_DB_PATHS lists container paths no tablespace claims: ${unknown.map((p) => p.path).join(', ')}`, {
      hint: 'a tablespace was created or altered during discovery: run the backup again',
      context: ctx,
    });
  }
  return spaces;
}
