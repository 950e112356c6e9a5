/**
 * What every MariaDB restore shares: the server state recorded at backup time, where each archived
 * file goes (its live path, or one flat data directory under --to DIR or a scratch directory), and the
 * options that start a server on the restored files.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ArchivedChunk, RestorePlan } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { BackupMeta } from '../../src/model.js';
import type { MariadbSettings } from './mariadb-config.js';
import { dataFileNames, layoutOf, type ServerLayout } from './mariadb-layout.js';
import type { BackupPoint } from './mariadb-session.js';

export function backupPointOf(meta: BackupMeta, instance: string): BackupPoint {
  const d = meta.details as Partial<BackupPoint> | undefined;
  if (d?.settings && d.flavor) return d as BackupPoint;
  const file = meta.files?.['server.json'];
  if (file) return JSON.parse(file.toString()) as BackupPoint;
  throw new EbrError('restore', 'the backup carries no server.json: it was not taken by the mariadb adapter', {
    hint: 'restore it with the adapter that took it',
    context: { instance, phase: 'restore' },
  });
}

/** Where a chunk goes: its live path, or under `base` with everything in one data directory. */
export function destinationIn(base: string | undefined): (c: ArchivedChunk) => string {
  return (c) => {
    if (!base) return c.path;
    const ext = /^#ext\/([^/]+)\/(.+)$/.exec(c.name);
    if (ext) return ext[1] === 'tables' ? path.join(base, ext[2]!) : path.join(base, path.basename(ext[2]!));
    return path.join(base, c.name);
  };
}

/** The layout the restored files have: the recorded one, or every directory folded into `base`. */
export function restoredLayout(point: BackupPoint, base: string | undefined): ServerLayout {
  const live = layoutOf(point.settings);
  if (!base) return live;
  return {
    datadir: base,
    systemFiles: live.systemFiles.map((f) => path.join(base, path.basename(f))),
    tempFiles: [],
    dataHomeDir: base,
    undoDir: base,
    redoDir: base,
    ...(live.ariaDir ? { ariaDir: base } : {}),
    ...(live.binlogBasename ? { binlogBasename: path.join(base, path.basename(live.binlogBasename)) } : {}),
    ...(live.binlogIndex ? { binlogIndex: path.join(base, path.basename(live.binlogIndex)) } : {}),
  };
}

/** Options that make a server start on the restored files as the backed-up server did. */
export function serverOptions(point: BackupPoint, l: ServerLayout, settings: MariadbSettings, relocated: boolean): string[] {
  const s = point.settings;
  const opt: string[] = [];
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== '') opt.push(`--${name.replace(/_/g, '-')}=${value}`);
  };
  set('innodb_data_home_dir', l.dataHomeDir);
  // Relocated system tablespace files keep their sizes but lose their directories.
  set('innodb_data_file_path', relocated && s.innodb_data_file_path ? relocateDataFilePath(s.innodb_data_file_path) : s.innodb_data_file_path);
  set('innodb_undo_directory', l.undoDir);
  set('innodb_log_group_home_dir', l.redoDir);
  set('innodb_page_size', s.innodb_page_size);
  set('lower_case_table_names', s.lower_case_table_names);
  set('innodb_file_per_table', s.innodb_file_per_table);
  set('innodb_buffer_pool_size', settings.tempServerBufferPool);
  if (point.flavor === 'mariadb') {
    set('innodb_undo_tablespaces', s.innodb_undo_tablespaces);
    set('innodb_log_file_size', s.innodb_log_file_size);
    set('innodb_checksum_algorithm', s.innodb_checksum_algorithm);
    set('aria_log_dir_path', l.ariaDir);
  }
  if (!relocated && s.innodb_temp_data_file_path) set('innodb_temp_data_file_path', s.innodb_temp_data_file_path);
  if (l.binlogBasename) {
    set('log_bin', l.binlogBasename);
    set('log_bin_index', l.binlogIndex);
    set('server_id', s.server_id || '1');
    set('binlog_format', s.binlog_format);
  }
  return [...opt, ...settings.tempServerOptions];
}

function relocateDataFilePath(spec: string): string {
  const names = dataFileNames(spec);
  let out = spec;
  for (const n of names) if (n.includes('/')) out = out.replace(n, path.basename(n));
  return out;
}

/** The OS user that owns the restored files: the temporary server runs as that user when ebr is root. */
export function runAsUser(plan: RestorePlan): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = plan.spaces.flatMap((s) => s.chunks).find((c) => c.type === 'file' && c.uid !== undefined)?.uid ?? 0;
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.split(':')[2] === String(uid));
    if (line) return line.split(':')[0];
  } catch {
    // fall through to the number
  }
  return String(uid);
}

/** uid/gid that own the restored files (for directories ebr creates itself). */
export function ownerOf(plan: RestorePlan): { uid: number; gid: number } | undefined {
  const c = plan.spaces.flatMap((s) => s.chunks).find((x) => x.type === 'file' && x.uid !== undefined && x.gid !== undefined);
  return c ? { uid: c.uid!, gid: c.gid! } : undefined;
}
