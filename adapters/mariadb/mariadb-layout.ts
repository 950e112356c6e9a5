/**
 * Where a server keeps its files, worked out from its variables. Paths in the variables may be
 * relative to the data directory; everything here is absolute. Restore reads the same variables back
 * from the backup's meta, so this module needs no connection.
 */
import path from 'node:path';

export type ServerSettings = Record<string, string>;

export interface ServerLayout {
  datadir: string;
  /** InnoDB system tablespace files (innodb_data_file_path under innodb_data_home_dir). */
  systemFiles: string[];
  /** Temporary tablespace files: recreated at start, never backed up. */
  tempFiles: string[];
  dataHomeDir: string;
  undoDir: string;
  redoDir: string;
  ariaDir?: string;
  /** Binlog base name (directory + prefix), when the binary log is on. */
  binlogBasename?: string;
  binlogIndex?: string;
  pidFile?: string;
  socket?: string;
}

export function layoutOf(vars: ServerSettings): ServerLayout {
  const datadir = path.resolve(vars.datadir ?? '.');
  const inData = (p: string | undefined, fallback = datadir) => (p ? path.resolve(datadir, p) : fallback);
  const dataHomeDir = inData(vars.innodb_data_home_dir);
  const binlogOn = /^(on|1)$/i.test(vars.log_bin ?? '');
  return {
    datadir,
    dataHomeDir,
    systemFiles: dataFileNames(vars.innodb_data_file_path ?? 'ibdata1:12M:autoextend').map((f) => path.resolve(dataHomeDir, f)),
    tempFiles: dataFileNames(vars.innodb_temp_data_file_path ?? 'ibtmp1:12M:autoextend').map((f) => path.resolve(datadir, f)),
    undoDir: inData(vars.innodb_undo_directory),
    redoDir: inData(vars.innodb_log_group_home_dir),
    ...(vars.aria_log_dir_path ? { ariaDir: inData(vars.aria_log_dir_path) } : {}),
    ...(binlogOn && vars.log_bin_basename ? { binlogBasename: inData(vars.log_bin_basename) } : {}),
    ...(binlogOn && vars.log_bin_index ? { binlogIndex: inData(vars.log_bin_index) } : {}),
    ...(vars.pid_file ? { pidFile: inData(vars.pid_file) } : {}),
    ...(vars.socket ? { socket: path.resolve(vars.socket) } : {}),
  };
}

/** `ibdata1:12M;ibdata2:50M:autoextend` → [ibdata1, ibdata2]; a trailing `newraw`/`raw` is part of the size spec. */
export function dataFileNames(spec: string): string[] {
  return spec
    .split(';')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      // The name ends at the first ':' that is followed by a size (digits and a unit).
      const m = /^(.*?):\d+[KMGT]?(?::|$)/i.exec(part);
      return m ? m[1]! : part;
    });
}

/** MariaDB/MySQL encode unsafe characters in schema and table file names as @XXXX; decodes those. */
export function decodeFileName(name: string): string {
  return name.replace(/@([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** The file name the server uses for a schema or table name (ASCII subset of its encoding). */
export function encodeFileName(name: string): string {
  let out = '';
  for (const ch of name) {
    if (/[A-Za-z0-9_]/.test(ch)) out += ch;
    else if (ch.codePointAt(0)! < 0x10000) out += `@${ch.codePointAt(0)!.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}

/** Binlog files are `<basename>.<digits>`; the number orders them. */
export function binlogNumber(file: string): number | undefined {
  const m = /\.(\d+)$/.exec(file);
  return m ? Number(m[1]) : undefined;
}
