/**
 * Spaces of SQL Server databases: one per filegroup (the unit a piecemeal restore takes) and one for
 * each database's transaction log. PRIMARY and the log are critical: a database cannot come online
 * without them, and a partial restore always brings them back with the filegroups asked for.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Chunk, Space } from '../../src/model.js';
import { EbrError } from '../../src/errors.js';

export interface FileRow {
  file_id: number;
  type_desc: string;
  name: string;
  physical_name: string;
  state_desc: string;
  size: number;
  filegroup_name: string | null;
  filegroup_type: string | null;
}

export const logSpaceOf = (db: string) => `${db}.log`;
export const filegroupSpaceOf = (db: string, fg: string) => `${db}.${fg}`;

export async function spacesOf(db: string, rows: FileRow[], context: { instance: string }): Promise<Space[]> {
  const ctx = { ...context, phase: 'discover', database: db };
  const groups = new Map<string, { fg: string | undefined; rows: FileRow[] }>();
  const taken = new Set<string>();
  for (const r of rows) {
    if (r.type_desc !== 'ROWS' && r.type_desc !== 'LOG') {
      throw new EbrError('discover', `database ${db} has a ${r.type_desc} file (${r.name}, ${r.physical_name}); ebr backs up data and log files only`, {
        hint: 'FILESTREAM and memory-optimized filegroups are directories the snapshot backup does not describe file by file; back this database up with a streaming BACKUP DATABASE',
        context: ctx,
      });
    }
    if (r.state_desc !== 'ONLINE') {
      throw new EbrError('discover', `file ${r.name} of database ${db} is ${r.state_desc}`, { hint: `bring it online first (ALTER DATABASE [${db}] MODIFY FILE …), or leave ${db} out of mssql.databases`, context: ctx });
    }
    const key = r.type_desc === 'LOG' ? logSpaceOf(db) : filegroupSpaceOf(db, r.filegroup_name ?? 'PRIMARY');
    const g = groups.get(key) ?? { fg: r.type_desc === 'LOG' ? undefined : (r.filegroup_name ?? 'PRIMARY'), rows: [] };
    g.rows.push(r);
    groups.set(key, g);
  }
  const spaces: Space[] = [];
  for (const [name, g] of groups) {
    const chunks: Chunk[] = [];
    for (const r of g.rows) {
      let base = path.basename(r.physical_name.replace(/\\/g, '/'));
      if (taken.has(base.toLowerCase())) base = `${r.file_id}-${base}`;
      taken.add(base.toLowerCase());
      let st;
      try {
        st = await stat(r.physical_name);
      } catch (err) {
        throw new EbrError('discover', `cannot read ${r.physical_name} (file ${r.name} of database ${db}): ${(err as Error).message}`, {
          hint: 'run ebr on the SQL Server host, as root or as the mssql OS user, so it reads the files the server lists',
          context: { ...ctx, path: r.physical_name },
          cause: err,
        });
      }
      chunks.push({
        space: name,
        name: `${db}/${base}`,
        path: r.physical_name,
        type: 'file',
        size: st.size,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtimeMs: st.mtimeMs,
        details: { database: db, fileId: r.file_id, logicalName: r.name, fileType: r.type_desc, pages: r.size, ...(g.fg ? { filegroup: g.fg } : {}) },
      });
    }
    const isLog = g.fg === undefined;
    spaces.push({
      name,
      critical: isLog || g.fg === 'PRIMARY',
      kind: isLog ? 'transaction log' : 'filegroup',
      chunks,
      details: { database: db, ...(g.fg ? { filegroup: g.fg } : { log: true }) },
      ...(isLog ? { notes: ['restored with every filegroup of its database'] } : g.fg === 'PRIMARY' ? { notes: ['restored with every filegroup of its database'] } : {}),
    });
  }
  // PRIMARY first, the log last: the order a DBA reads sys.database_files in.
  return spaces.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

const rank = (s: Space) => (s.details?.filegroup === 'PRIMARY' ? 0 : s.details?.log ? 2 : 1);

/** The databases a backup's spaces belong to, in the configured order. */
export function databasesOf(spaces: Array<Pick<Space, 'details'>>): string[] {
  const out: string[] = [];
  for (const s of spaces) {
    const db = s.details?.database;
    if (typeof db === 'string' && !out.includes(db)) out.push(db);
  }
  return out;
}
