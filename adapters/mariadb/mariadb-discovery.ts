/**
 * Spaces of a MariaDB/MySQL server: one per schema (its directory: .frm, .ibd, Aria/MyISAM files,
 * db.opt; plus InnoDB files it keeps outside the data directory), and the critical `server` space with
 * everything else the server needs to start: the system tablespace, undo and redo, the mysql/sys/
 * performance_schema schemas, Aria's control file and log, the binlogs and their index.
 *
 * The data directory listing is the source of truth for what files exist; the server's variables and
 * information_schema say where the rest lives and what the files are.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { chunkOf } from '../../src/chunks.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk, Space } from '../../src/model.js';
import type { Row } from './mariadb-connection.js';
import { decodeFileName, encodeFileName, type ServerLayout } from './mariadb-layout.js';

export const serverSpace = 'server';
/** Schemas that belong to the server itself: part of the critical space, never restored on their own. */
export const systemSchemas = ['mysql', 'sys', 'performance_schema', 'information_schema'];

export interface Catalog {
  /** information_schema.SCHEMATA names. */
  schemas: string[];
  /** InnoDB tablespaces: name `schema/table` (file-name encoded) and the path of the file. */
  tablespaces: Array<{ name: string; path: string }>;
  /** Base tables with their engine. */
  tables: Array<{ schema: string; table: string; engine: string }>;
  /** Binlog file names (no directory), oldest first. */
  binlogs: string[];
}

export function catalogOf(schemas: Row[], tablespaces: Row[], tables: Row[], binlogs: Row[]): Catalog {
  return {
    schemas: schemas.map((r) => String(r.name)),
    tablespaces: tablespaces.map((r) => ({ name: String(r.name), path: String(r.path) })),
    tables: tables.map((r) => ({ schema: String(r.schema), table: String(r.table), engine: String(r.engine) })),
    binlogs: binlogs.map((r) => String(r.Log_name)),
  };
}

export async function discoverSpaces(layout: ServerLayout, catalog: Catalog, instance: string): Promise<Space[]> {
  const { datadir } = layout;
  const server: Chunk[] = [];
  const schemaSpaces: Space[] = [];
  const taken = new Set<string>();
  const add = async (into: Chunk[], space: string, name: string, file: string, details?: Record<string, unknown>) => {
    if (taken.has(file)) return;
    const c = await chunkOf(space, name, file, details);
    if (!c) return;
    taken.add(file);
    into.push(c);
  };
  const excluded = excludedFiles(layout);

  let entries;
  try {
    entries = await readdir(datadir, { withFileTypes: true });
  } catch (err) {
    throw new EbrError('discover', `cannot list the data directory ${datadir}: ${(err as Error).message}`, {
      hint: 'ebr reads the files directly: run it on the database host as root or as the server\'s OS user',
      context: { instance, path: datadir },
      cause: err,
    });
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = path.join(datadir, e.name);
    if (skipEntry(e.name) || excluded.has(full)) continue;
    const isDir = e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(full)));
    if (!isDir) {
      if (e.isFile()) await add(server, serverSpace, e.name, full, { role: roleOf(full, layout) });
      continue;
    }
    if (e.name === 'lost+found' || e.name === '#innodb_temp') continue;
    if (systemSchemas.includes(e.name) || e.name.startsWith('#')) {
      await addTree(server, serverSpace, datadir, full, add, excluded);
      continue;
    }
    schemaSpaces.push(await schemaSpace(e.name, full, catalog, layout, add, excluded, instance));
  }

  // Files the server keeps outside the data directory: named by the variable that points at them, with
  // the same role as when they are inside (restore finds the binlogs and the redo log by their role).
  const outside = async (variable: string, file: string) => {
    if (isInside(file, datadir)) return;
    await add(server, serverSpace, `#ext/${variable}/${path.basename(file)}`, file, { role: roleOf(file, layout), variable, outside: true });
  };
  for (const f of layout.systemFiles) await outside('innodb_data_home_dir', f);
  for (const f of await listMatching(layout.undoDir, /^undo\d+$/)) await outside('innodb_undo_directory', f);
  for (const f of await listMatching(layout.redoDir, /^ib_logfile\d+$/)) await outside('innodb_log_group_home_dir', f);
  if (layout.ariaDir) for (const f of await listMatching(layout.ariaDir, /^aria_log(_control|\.\d+)$/)) await outside('aria_log_dir_path', f);
  if (layout.binlogBasename) {
    const dir = path.dirname(layout.binlogBasename);
    for (const b of catalog.binlogs) await outside('log_bin_basename', path.join(dir, b));
  }
  if (layout.binlogIndex) await outside('log_bin_index', layout.binlogIndex);

  for (const f of layout.systemFiles) {
    if (!taken.has(f)) {
      throw new EbrError('discover', `the InnoDB system tablespace file ${f} was not found`, {
        hint: 'ebr must run on the database host, with read access to the data directory',
        context: { instance, path: f },
      });
    }
  }
  // Redo first: a provider that copies file by file then copies the log before the pages it describes.
  server.sort((a, b) => rank(a) - rank(b));
  return [
    {
      name: serverSpace,
      critical: true,
      kind: 'server',
      chunks: server,
      details: { datadir },
      notes: ['system tablespace, undo, redo, binlogs, and the mysql, sys and performance_schema schemas'],
    },
    ...schemaSpaces,
  ];
}

type Add = (into: Chunk[], space: string, name: string, file: string, details?: Record<string, unknown>) => Promise<void>;

/**
 * Chunks of the server space for binlogs the server started after discovery (a rotation: max_binlog_size,
 * FLUSH BINARY LOGS from another session), named as discovery names them. Vanished files are left out.
 */
export async function binlogChunks(layout: ServerLayout, names: string[]): Promise<Chunk[]> {
  if (!layout.binlogBasename) return [];
  const dir = path.dirname(layout.binlogBasename);
  const out: Chunk[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    const inside = isInside(file, layout.datadir);
    const c = await chunkOf(serverSpace, inside ? path.relative(layout.datadir, file) : `#ext/log_bin_basename/${n}`, file, inside ? { role: 'binlog' } : { role: 'binlog', variable: 'log_bin_basename', outside: true });
    if (c) out.push(c);
  }
  return out;
}

async function schemaSpace(dirName: string, dir: string, catalog: Catalog, layout: ServerLayout, add: Add, excluded: Set<string>, instance: string): Promise<Space> {
  const decoded = decodeFileName(dirName);
  const schema = catalog.schemas.includes(decoded) ? decoded : (catalog.schemas.find((s) => s.toLowerCase() === decoded.toLowerCase()) ?? decoded);
  // A schema named like the critical space gets a name no schema directory can have.
  const spaceName = dirName === serverSpace ? `${dirName}@schema` : dirName;
  const chunks: Chunk[] = [];
  await addTree(chunks, spaceName, layout.datadir, dir, add, excluded);
  const tablespaces = catalog.tablespaces.filter((t) => t.name.startsWith(`${dirName}/`));
  for (const t of tablespaces) {
    const file = path.resolve(layout.datadir, t.path);
    if (!isInside(file, layout.datadir)) await add(chunks, spaceName, `#ext/tables/${dirName}/${path.basename(file)}`, file, { role: 'table', outside: true });
  }
  const tables = catalog.tables.filter((t) => t.schema === schema);
  const other = tables.filter((t) => t.engine.toLowerCase() !== 'innodb');
  const withFile = new Set(tablespaces.map((t) => t.name.slice(dirName.length + 1).replace(/#[pP]#.*$/, '')));
  const inSystem = tables.filter((t) => t.engine.toLowerCase() === 'innodb' && !withFile.has(encodeFileName(t.table)));
  const notes: string[] = [];
  if (other.length > 0) notes.push(`non-InnoDB tables (restored only with a full restore): ${other.map((t) => `${t.table} (${t.engine})`).join(', ')}`);
  if (inSystem.length > 0) notes.push(`InnoDB tables in the system tablespace (restored only with a full restore): ${inSystem.map((t) => t.table).join(', ')}`);
  const links = chunks.filter((c) => c.type === 'symlink');
  if (links.length > 0) notes.push(`symbolic links recorded, their targets not followed: ${links.map((c) => `${c.name} -> ${c.linkTarget}`).join(', ')}`);
  if (chunks.length === 0) {
    throw new EbrError('discover', `schema directory ${dir} vanished during discovery`, { context: { instance, space: spaceName, path: dir } });
  }
  return {
    name: spaceName,
    critical: false,
    kind: 'schema',
    chunks,
    ...(notes.length > 0 ? { notes } : {}),
    details: {
      schema,
      dir: dirName,
      innodbTables: tables.filter((t) => !other.includes(t) && !inSystem.includes(t)).map((t) => t.table),
      otherTables: other.map((t) => ({ table: t.table, engine: t.engine })),
      systemTablespaceTables: inSystem.map((t) => t.table),
    },
  };
}

/** The directory itself and everything under it, names relative to the data directory. */
async function addTree(into: Chunk[], space: string, datadir: string, dir: string, add: Add, excluded: Set<string>): Promise<void> {
  await add(into, space, path.relative(datadir, dir), dir, { role: 'directory' });
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (skipEntry(e.name) || excluded.has(full)) continue;
    if (e.isDirectory()) await addTree(into, space, datadir, full, add, excluded);
    else if (e.isFile() || e.isSymbolicLink()) await add(into, space, path.relative(datadir, full), full, { role: roleOfTableFile(e.name) });
  }
}

/** Never backed up: temporary tables of ALTER (#sql…), ebr's own staging, sockets' lock files, pid files. */
function skipEntry(name: string): boolean {
  return name.startsWith('#sql') || name.startsWith('.') || name.endsWith('.pid') || name.endsWith('.sock') || name.endsWith('.sock.lock');
}

function excludedFiles(layout: ServerLayout): Set<string> {
  const s = new Set<string>(layout.tempFiles);
  if (layout.pidFile) s.add(layout.pidFile);
  if (layout.socket) s.add(layout.socket);
  return s;
}

function roleOf(file: string, layout: ServerLayout): string {
  const base = path.basename(file);
  if (layout.systemFiles.includes(file)) return 'system-tablespace';
  if (/^ib_logfile\d+$/.test(base)) return 'redo';
  if (/^undo\d+$/.test(base)) return 'undo';
  if (/^aria_log(_control|\.\d+)$/.test(base)) return 'aria-log';
  if (layout.binlogIndex === file) return 'binlog-index';
  if (layout.binlogBasename && file.startsWith(`${layout.binlogBasename}.`) && /\.\d+$/.test(base)) return 'binlog';
  return 'server-file';
}

function roleOfTableFile(name: string): string {
  const ext = path.extname(name).toLowerCase();
  return ext === '.ibd' ? 'table' : ext === '.frm' ? 'definition' : ext === '.opt' ? 'schema-options' : 'table-file';
}

function rank(c: Chunk): number {
  const role = c.details?.role;
  return role === 'redo' ? 0 : role === 'directory' ? 1 : 2;
}

function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then((s) => s.isDirectory(), () => false);
}

async function listMatching(dir: string, re: RegExp): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => re.test(n)).sort().map((n) => path.join(dir, n));
}
