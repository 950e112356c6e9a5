/**
 * Every statement ebr sends to SQL Server, built in one place: the session runs these and planBackup
 * and the restore plan list the same strings, so what `--dry-run` prints is what the server gets.
 */
import path from 'node:path';

/** A bracketed identifier: `]` is doubled, as QUOTENAME does. */
export const ident = (name: string): string => `[${name.replace(/]/g, ']]')}]`;
/** An N'…' literal: `'` is doubled. */
export const literal = (text: string): string => `N'${text.replace(/'/g, "''")}'`;
const list = (dbs: string[]) => dbs.map(literal).join(', ');

export const describeServer =
  "SELECT @@SPID AS spid, @@SERVERNAME AS serverName, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS productVersion, CAST(SERVERPROPERTY('ProductMajorVersion') AS int) AS major, CAST(SERVERPROPERTY('Edition') AS nvarchar(128)) AS edition";

/** State, recovery model and the permissions the backup needs, for each configured database. */
export const preflight = (dbs: string[]): string =>
  `SELECT d.name, d.state_desc, d.recovery_model_desc, HAS_PERMS_BY_NAME(d.name, 'DATABASE', 'BACKUP DATABASE') AS canBackup, HAS_PERMS_BY_NAME(d.name, 'DATABASE', 'BACKUP LOG') AS canBackupLog, HAS_PERMS_BY_NAME(NULL, NULL, 'ALTER ANY DATABASE') AS alterAnyDatabase, IS_SRVROLEMEMBER('sysadmin') AS sysadmin FROM sys.databases AS d WHERE d.name IN (${list(dbs)}) ORDER BY d.name`;

/** The files of one database with their filegroup (the log has none). */
export const databaseFiles = (db: string): string =>
  `SELECT f.file_id, f.type_desc, f.name, f.physical_name, f.state_desc, f.size, fg.name AS filegroup_name, fg.type_desc AS filegroup_type FROM ${ident(db)}.sys.database_files AS f LEFT JOIN ${ident(db)}.sys.filegroups AS fg ON fg.data_space_id = f.data_space_id ORDER BY f.file_id`;

/** CHECKPOINT acts on the current database; sp_executesql of that database runs it there without USE. */
export const checkpoint = (db: string): string => `EXEC ${ident(db)}.sys.sp_executesql N'CHECKPOINT'`;

export const suspendOn = (dbs: string[]): string =>
  dbs.length === 1
    ? `ALTER DATABASE ${ident(dbs[0]!)} SET SUSPEND_FOR_SNAPSHOT_BACKUP = ON`
    : `ALTER SERVER CONFIGURATION SET SUSPEND_FOR_SNAPSHOT_BACKUP = ON (GROUP = (${dbs.map(ident).join(', ')}))`;

export const suspendOff = (dbs: string[]): string =>
  dbs.length === 1 ? `ALTER DATABASE ${ident(dbs[0]!)} SET SUSPEND_FOR_SNAPSHOT_BACKUP = OFF` : 'ALTER SERVER CONFIGURATION SET SUSPEND_FOR_SNAPSHOT_BACKUP = OFF';

/** Proves the freeze is on for every database before the snapshot is taken (columns s0, s1, … in order). */
export const suspendStatus = (dbs: string[]): string =>
  `SELECT CAST(SERVERPROPERTY('SuspendedDatabaseCount') AS int) AS suspendedCount, ${dbs
    .map((d, i) => `CAST(DATABASEPROPERTYEX(${literal(d)}, 'IsDatabaseSuspendedForSnapshotBackup') AS int) AS s${i}`)
    .join(', ')}`;

/** Where the server writes the metadata file of a backup; fixed per instance so planBackup can name it. */
export const bkmFile = (backupDir: string, instance: string, dbs: string[]): string =>
  path.join(backupDir, `ebr-${safeName(instance)}-${dbs.length === 1 ? safeName(dbs[0]!) : 'group'}.bkm`);

/** Records the backup in msdb, writes the .bkm and ends the freeze. */
export const backupMetadata = (dbs: string[], file: string, instance: string): string =>
  `${dbs.length === 1 ? `BACKUP DATABASE ${ident(dbs[0]!)}` : `BACKUP GROUP ${dbs.map(ident).join(', ')}`} TO DISK = ${literal(file)} WITH METADATA_ONLY, FORMAT, MEDIANAME = ${literal(`ebr-${instance}`)}, MEDIADESCRIPTION = ${literal(`ebr snapshot backup of ${instance}`)}`;

const lsnColumns =
  'database_name, CAST(first_lsn AS varchar(30)) AS first_lsn, CAST(last_lsn AS varchar(30)) AS last_lsn, CAST(checkpoint_lsn AS varchar(30)) AS checkpoint_lsn, CAST(database_backup_lsn AS varchar(30)) AS database_backup_lsn, backup_start_date, backup_finish_date';

/** The backup just recorded, per database: its LSNs order the log backups at restore. */
export const lastFullBackups = (dbs: string[]): string =>
  `SELECT ${lsnColumns} FROM msdb.dbo.backupset WHERE backup_set_id IN (SELECT MAX(backup_set_id) FROM msdb.dbo.backupset WHERE type = 'D' AND database_name IN (${list(dbs)}) GROUP BY database_name) ORDER BY database_name`;

export const backupLog = (db: string, file: string, instance: string): string =>
  `BACKUP LOG ${ident(db)} TO DISK = ${literal(file)} WITH FORMAT, MEDIANAME = ${literal(`ebr-${instance}`)}`;

export const lastLogBackup = (db: string): string =>
  `SELECT TOP (1) ${lsnColumns} FROM msdb.dbo.backupset WHERE type = 'L' AND database_name = ${literal(db)} ORDER BY backup_set_id DESC`;

/** A metadata restore replaces the files under the database: the server must not hold them open. */
export const takeOffline = (db: string): string => `IF DB_ID(${literal(db)}) IS NOT NULL ALTER DATABASE ${ident(db)} SET OFFLINE WITH ROLLBACK IMMEDIATE`;
/** Undoes takeOffline after a restore that failed before any RESTORE statement ran. */
export const bringOnline = (db: string): string => `IF DB_ID(${literal(db)}) IS NOT NULL ALTER DATABASE ${ident(db)} SET ONLINE`;

export interface RestoreDatabaseOptions {
  db: string;
  bkm: string;
  /** The .bkm holds several databases (BACKUP GROUP): DBNAME picks one. */
  group: boolean;
  /** Partial: the filegroups restored (PRIMARY first). */
  filegroups?: string[];
  moves?: Array<{ logical: string; to: string }>;
  recovery: boolean;
}

export const restoreDatabase = (o: RestoreDatabaseOptions): string => {
  const fgs = o.filegroups?.length ? ` ${o.filegroups.map((f) => `FILEGROUP = ${literal(f)}`).join(', ')}` : '';
  const withs = [
    'METADATA_ONLY',
    ...(o.group ? [`DBNAME = ${literal(o.db)}`] : []),
    ...(o.filegroups?.length ? ['PARTIAL'] : []),
    'REPLACE',
    ...(o.moves ?? []).map((m) => `MOVE ${literal(m.logical)} TO ${literal(m.to)}`),
    o.recovery ? 'RECOVERY' : 'NORECOVERY',
  ];
  return `RESTORE DATABASE ${ident(o.db)}${fgs} FROM DISK = ${literal(o.bkm)} WITH ${withs.join(', ')}`;
};

export const restoreLog = (db: string, file: string, o: { stopAt?: string; recovery: boolean }): string =>
  `RESTORE LOG ${ident(db)} FROM DISK = ${literal(file)} WITH ${o.stopAt ? `STOPAT = ${literal(o.stopAt)}, ` : ''}${o.recovery ? 'RECOVERY' : 'NORECOVERY'}`;

export const recoverDatabase = (db: string): string => `RESTORE DATABASE ${ident(db)} WITH RECOVERY`;

/** A database name as part of a file or log name: the log store takes letters, digits and _ . @ + - only. */
export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.@+-]/g, (c) => `+${c.codePointAt(0)!.toString(16)}`).replace(/^\./, '+2e');
}

/** A time SQL Server parses the same in every language setting: ISO 8601 in UTC, milliseconds. */
export function sqlTime(d: Date): string {
  return d.toISOString().replace('Z', '');
}
