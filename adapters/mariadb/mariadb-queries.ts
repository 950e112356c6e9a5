/**
 * The statements, per server flavour. MariaDB (10.4+) holds commits with BACKUP STAGE; MySQL 8 has no
 * BACKUP STAGE and uses LOCK INSTANCE FOR BACKUP with performance_schema.log_status instead. The
 * session asks this table which statements to run and never asks which server it talks to.
 */
import { EbrError } from '../../src/errors.js';

export type Flavor = 'mariadb' | 'mysql';

export interface ServerVersion {
  flavor: Flavor;
  /** As the server reports it (VERSION()). */
  version: string;
  major: number;
  minor: number;
  patch: number;
}

export function parseVersion(version: string, comment = ''): ServerVersion {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new EbrError('connect', `cannot read the server version ${JSON.stringify(version)}`, { hint: 'ebr supports MariaDB 10.4+ and MySQL 8.0+' });
  const flavor: Flavor = /mariadb/i.test(version) || /mariadb/i.test(comment) ? 'mariadb' : 'mysql';
  return { flavor, version, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

function atLeast(v: ServerVersion, major: number, minor: number, patch = 0): boolean {
  return v.major !== major ? v.major > major : v.minor !== minor ? v.minor > minor : v.patch >= patch;
}

export interface Dialect {
  flavor: Flavor;
  /** Session settings that bound every wait of the statements below. */
  sessionSetup(lockWaitTimeoutS: number): string[];
  /** Bounds the statements that open the window, which writers queue behind while they wait. */
  blockTimeout(ms: number): string[];
  /** Undoes blockTimeout once the window is closed. */
  afterWindow: string[];
  /** Before the window: DDL and non-transactional tables are quiesced, writes to InnoDB go on. */
  checkpoint: string[];
  /** Opens the window (commits held, where the server can hold them). */
  block: string[];
  /**
   * When the position is read: MariaDB holds every commit for the whole window, so it reads it at
   * unblock (just before END) and block returns the moment commits are held; MySQL's DML goes on, so it
   * must read it at block, before the snapshot (replay then starts early and skips what is in by GTID).
   */
  readPositionAt: 'block' | 'unblock';
  /** Inside the window: the binlog position, GTID set and server clock, read on the blocking session. */
  readPosition(query: (sql: string) => Promise<Row[]>): Promise<BinlogPosition>;
  /** Closes the window and releases everything the earlier statements took. */
  unblock: string[];
  /** NAME (schema/table) and PATH of every InnoDB file-per-table and general tablespace. */
  tablespaces: string;
  /** The binlog being written: File and Position columns. */
  currentBinlog: string;
  /** Closes the current binlog and opens a new one; the closed one can then be archived. */
  rotateBinlog: string;
  /** Server variables recorded with each backup: restore needs them when no server runs. */
  settings: string[];
  /** Why a partial restore may differ: table definitions are compared with these statements. */
  showCreateTable(schema: string, table: string): string;
}

const commonSettings = [
  'datadir',
  'innodb_data_home_dir',
  'innodb_data_file_path',
  'innodb_temp_data_file_path',
  'innodb_undo_directory',
  'innodb_undo_tablespaces',
  'innodb_log_group_home_dir',
  'innodb_log_file_size',
  'innodb_page_size',
  'innodb_file_per_table',
  'innodb_checksum_algorithm',
  'lower_case_table_names',
  'log_bin',
  'log_bin_basename',
  'log_bin_index',
  'binlog_format',
  'server_id',
  'pid_file',
  'socket',
  'port',
  'version',
  'version_comment',
];

export function dialectFor(v: ServerVersion): Dialect {
  const showCreateTable = (schema: string, table: string) => `SHOW CREATE TABLE ${quoteId(schema)}.${quoteId(table)}`;
  if (v.flavor === 'mariadb') {
    if (!atLeast(v, 10, 4)) {
      throw new EbrError('connect', `MariaDB ${v.version} has no BACKUP STAGE`, { hint: 'ebr needs MariaDB 10.4 or later; upgrade the server' });
    }
    return {
      flavor: 'mariadb',
      sessionSetup: (s) => [`SET SESSION lock_wait_timeout = ${s}`, `SET SESSION max_statement_time = ${s + 5}`],
      // max_statement_time takes fractions of a second and also ends a statement waiting for a lock.
      blockTimeout: (ms) => [`SET SESSION max_statement_time = ${(ms / 1000).toFixed(3)}`],
      afterWindow: ['SET SESSION max_statement_time = 0'],
      // Skipped stages would run implicitly; running them one by one keeps the slow ones out of the window.
      checkpoint: ['BACKUP STAGE START', 'BACKUP STAGE FLUSH', 'BACKUP STAGE BLOCK_DDL'],
      // With the binlog on, InnoDB leaves a commit's redo record in its log buffer (the binlog makes it
      // durable), and a background write later adds it, and a binlog checkpoint event saying so. A
      // freeze taken file after file can then hold the redo log from before that write and the binlog
      // from after it: crash recovery, told by the checkpoint that the older binlog is settled, rolls
      // the prepared transaction back. Flushing InnoDB's log once commits are held puts every commit
      // the recorded position covers into the redo log before anything is frozen (xtrabackup does the same).
      block: ['BACKUP STAGE BLOCK_COMMIT', 'FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS'],
      readPositionAt: 'unblock',
      // The binlog is locked during BLOCK_COMMIT, so the position and GTID are exact.
      async readPosition(query) {
        const [status] = await query('SHOW MASTER STATUS');
        const [row] = await query('SELECT @@global.gtid_binlog_pos AS gtid, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch');
        return {
          ...(status ? { file: String(status.File), position: Number(status.Position) } : {}),
          ...(row?.gtid ? { gtid: String(row.gtid) } : {}),
          serverTime: String(row?.serverTime),
          serverEpoch: Number(row?.serverEpoch),
        };
      },
      unblock: ['BACKUP STAGE END'],
      // FILENAME is in INNODB_SYS_TABLESPACES from 10.6; before that the path lives in INNODB_SYS_DATAFILES.
      tablespaces: atLeast(v, 10, 6)
        ? 'SELECT NAME AS name, FILENAME AS path FROM information_schema.INNODB_SYS_TABLESPACES WHERE SPACE <> 0 AND FILENAME IS NOT NULL'
        : 'SELECT t.NAME AS name, d.PATH AS path FROM information_schema.INNODB_SYS_TABLESPACES t JOIN information_schema.INNODB_SYS_DATAFILES d ON d.SPACE = t.SPACE',
      currentBinlog: 'SHOW MASTER STATUS',
      rotateBinlog: 'FLUSH BINARY LOGS',
      settings: [...commonSettings, 'aria_log_dir_path', 'gtid_strict_mode', 'innodb_log_files_in_group'],
      showCreateTable,
    };
  }
  if (!atLeast(v, 8, 0)) {
    throw new EbrError('connect', `MySQL ${v.version} has no LOCK INSTANCE FOR BACKUP`, { hint: 'ebr needs MySQL 8.0 or later, or MariaDB 10.4 or later' });
  }
  return {
    flavor: 'mysql',
    sessionSetup: (s) => [`SET SESSION lock_wait_timeout = ${s}`],
    // Nothing inside the window waits for a lock: log_status only gathers positions.
    blockTimeout: () => [],
    afterWindow: [],
    // The backup lock blocks DDL and file operations only; DML and commits go on (the snapshot must be atomic).
    checkpoint: ['LOCK INSTANCE FOR BACKUP'],
    block: [],
    readPositionAt: 'block',
    // log_status gathers the binlog position, GTID set and InnoDB LSN at one instant. DML goes on, so the
    // position is near the snapshot, not at it: replay relies on GTID auto-skipping of what is already in.
    async readPosition(query) {
      const [row] = await query(
        'SELECT LOCAL AS local, STORAGE_ENGINES AS engines, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch FROM performance_schema.log_status',
      );
      const local = json(row?.local) as { binary_log_file?: string; binary_log_position?: number; gtid_executed?: string };
      const engines = json(row?.engines) as { InnoDB?: { LSN?: number } };
      return {
        ...(local.binary_log_file ? { file: local.binary_log_file, position: Number(local.binary_log_position) } : {}),
        ...(local.gtid_executed ? { gtid: local.gtid_executed.replace(/\s+/g, '') } : {}),
        ...(engines.InnoDB?.LSN !== undefined ? { lsn: String(engines.InnoDB.LSN) } : {}),
        serverTime: String(row?.serverTime),
        serverEpoch: Number(row?.serverEpoch),
      };
    },
    unblock: ['UNLOCK INSTANCE'],
    tablespaces: 'SELECT t.NAME AS name, d.PATH AS path FROM information_schema.INNODB_TABLESPACES t JOIN information_schema.INNODB_DATAFILES d ON d.SPACE = t.SPACE',
    // SHOW MASTER STATUS was replaced by SHOW BINARY LOG STATUS in 8.2 and removed in 8.4.
    currentBinlog: atLeast(v, 8, 2) ? 'SHOW BINARY LOG STATUS' : 'SHOW MASTER STATUS',
    rotateBinlog: 'FLUSH BINARY LOGS',
    settings: [...commonSettings, 'gtid_mode', 'innodb_redo_log_capacity'],
    showCreateTable,
  };
}

export interface BinlogPosition {
  /** Binlog file name (no directory) and byte position; absent when the binary log is off. */
  file?: string;
  position?: number;
  /** MariaDB gtid_binlog_pos, or MySQL gtid_executed. */
  gtid?: string;
  /** MySQL: the InnoDB LSN log_status reported. */
  lsn?: string;
  /** The server's clock at that moment, as NOW(6) prints it and as seconds since the epoch. */
  serverTime: string;
  serverEpoch: number;
}

type Row = Record<string, unknown>;

function json(v: unknown): Record<string, unknown> {
  if (v && typeof v === 'object') return v as Record<string, unknown>;
  if (typeof v === 'string' && v) return JSON.parse(v) as Record<string, unknown>;
  return {};
}

export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `SHOW GLOBAL VARIABLES` restricted to the names given. */
export function settingsQuery(names: string[]): string {
  return `SHOW GLOBAL VARIABLES WHERE Variable_name IN (${names.map((n) => `'${n}'`).join(', ')})`;
}

/**
 * A split mirror (mariadb-mirror.ts): the replica's SQL thread is stopped while its IO thread goes on
 * fetching the primary's binlog into the relay log; the replica's executed position, in the primary's
 * binlog coordinates, is the backup's.
 */
export const mirrorQueries = {
  /** Slave_IO_Running, Slave_SQL_Running, Master_Server_Id, Relay_Master_Log_File, Exec_Master_Log_Pos, Seconds_Behind_Master, Last_SQL_Errno. */
  replicaStatus: 'SHOW SLAVE STATUS',
  replicaIdentity: 'SELECT @@global.server_id AS serverId, @@global.gtid_slave_pos AS gtidSlavePos, @@global.log_slave_updates AS logSlaveUpdates, @@global.read_only AS readOnly',
  primaryIdentity: 'SELECT @@global.server_id AS serverId, @@global.gtid_binlog_pos AS gtid',
  primaryBinlogs: 'SHOW BINARY LOGS',
  primaryPosition: 'SHOW MASTER STATUS',
  /** Waits for the event group being applied; the IO thread keeps fetching. */
  stop: 'STOP SLAVE SQL_THREAD',
  start: 'START SLAVE SQL_THREAD',
  /** The split point: the primary's binlog coordinates the replica's data holds exactly, with the server clock. */
  splitPoint: 'SELECT @@global.gtid_slave_pos AS gtid, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch',
  /** Returns once the SQL thread has executed up to the primary's (file, position); -1 after the timeout, NULL when it is not running. */
  waitFor: 'SELECT MASTER_POS_WAIT(?, ?, ?) AS events',
  /** Where the replica keeps what makes it a replica: never part of a backup, which must start standalone. */
  replicationFiles: settingsQuery(['relay_log_basename', 'relay_log_index', 'relay_log_info_file', 'datadir']),
};
