/**
 * A restored server must not write binlogs under names the archive already holds from the old history
 * (the binlog that held the backup position, and every later one, exist there with other contents).
 * After recovery and replay, the restored server starts a new binlog history: its GTID state is kept
 * (SET GLOBAL gtid_binlog_state, which also empties the binlog), and the one new binlog is renamed past
 * the highest number either the restore or the archive has seen. Replication and later syncs then
 * continue from there.
 */
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes, RestoreFiles } from '../../src/adapter-api.js';
import { numberOf } from './binlog-sync.js';
import type { Sql } from './mariadb-connection.js';
import type { ServerLayout } from './mariadb-layout.js';

/** How the index names its files: `./` for the data directory, or an absolute directory. */
export async function indexPrefix(l: ServerLayout): Promise<string> {
  if (!l.binlogIndex || !l.binlogBasename) return './';
  const first = (await readFile(l.binlogIndex, 'utf8').catch(() => '')).split('\n').find(Boolean);
  const dir = path.dirname(l.binlogBasename);
  if (!first || !path.isAbsolute(first)) return dir === l.datadir ? './' : `${dir}/`;
  return `${dir}/`;
}

/** Lists exactly the given binlog files in the index, oldest first; through the restore's journal, owned like the restored files. */
export async function writeBinlogIndex(files: RestoreFiles, l: ServerLayout, prefix: string, names: string[], owner: FileAttributes = {}): Promise<void> {
  if (!l.binlogIndex) return;
  const sorted = [...names].sort((a, b) => (numberOf(a) ?? 0) - (numberOf(b) ?? 0));
  await files.writeFile(l.binlogIndex, sorted.map((n) => `${prefix}${n}\n`).join(''), { ...owner, mode: 0o660 });
}

/** On the temporary server, before its shutdown: keeps the GTID state, drops the old binlog files. */
export async function resetBinlogKeepingState(admin: Sql): Promise<string> {
  const [row] = await admin.query('SELECT @@global.gtid_binlog_state AS state');
  const state = String(row?.state ?? '');
  // The state can only be set on an empty binlog; setting it starts `<base>.000001` with that state.
  await admin.query('RESET MASTER');
  if (state) await admin.query('SET GLOBAL gtid_binlog_state = ?', [state]);
  return state;
}

/**
 * After the shutdown: the fresh `<base>.000001` becomes `<base>.<next>`. That file is the temporary
 * server's, in a directory the restore tracks, so an undone restore removes it with the rest.
 */
export async function renumberFirstBinlog(files: RestoreFiles, l: ServerLayout, prefix: string, next: number, owner: FileAttributes = {}): Promise<string | undefined> {
  if (!l.binlogBasename) return undefined;
  const from = `${l.binlogBasename}.000001`;
  const name = `${path.basename(l.binlogBasename)}.${String(next).padStart(6, '0')}`;
  await files.check(from);
  await rename(from, path.join(path.dirname(l.binlogBasename), name));
  await writeBinlogIndex(files, l, prefix, [name], owner);
  return name;
}

export function nextBinlogNumber(names: string[]): number {
  return Math.max(1, ...names.map((n) => numberOf(n) ?? 0)) + 1;
}
