/** What the mssql driver throws, turned into EbrErrors that name the host, the statement and the fix. */
import { EbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import type { MssqlSettings } from './mssql-config.js';

export interface DriverError extends Error {
  /** SQL Server's message number (RequestError). */
  number?: number;
  /** ELOGIN, ETIMEOUT, ESOCKET, EREQUEST … (ConnectionError, RequestError). */
  code?: string;
  class?: number;
}

/** Message numbers SQL Server answers when a permission is missing. */
const permissionNumbers = new Set([229, 262, 297, 300, 916, 3110, 5011, 15247, 15151]);
/** The grant each statement needs, from the BACKUP, RESTORE and ALTER DATABASE permission sections. */
export function grantFor(statement: string): string {
  if (/^RESTORE/i.test(statement)) return 'sysadmin or dbcreator (RESTORE of a database that exists: db_owner of it, or sysadmin)';
  if (/SUSPEND_FOR_SNAPSHOT_BACKUP/i.test(statement)) return 'sysadmin, or db_backupoperator in the database plus ALTER ANY DATABASE';
  if (/^BACKUP (DATABASE|GROUP|SERVER)/i.test(statement)) return 'sysadmin, or db_backupoperator in the database plus ALTER ANY DATABASE';
  if (/^BACKUP LOG/i.test(statement)) return 'sysadmin, or db_backupoperator in the database';
  if (/SET OFFLINE/i.test(statement)) return 'sysadmin, or ALTER on the database (dbcreator)';
  if (/msdb/i.test(statement)) return 'SELECT on msdb.dbo.backupset (db_datareader in msdb)';
  return 'sysadmin, or db_backupoperator in each database plus ALTER ANY DATABASE';
}

export const whereOf = (s: Pick<MssqlSettings, 'server' | 'port'>) => `${s.server}:${s.port}`;

export function connectError(err: unknown, s: MssqlSettings, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err.withContext(context);
  const e = err as DriverError;
  const where = whereOf(s);
  let hint = `check that SQL Server runs and accepts TCP connections on ${where} (instances.${String(context.instance)}.mssql.server/port, and the firewall)`;
  if (e.code === 'ELOGIN') hint = `check login ${s.user} and its password (password: \${MSSQL_PASSWORD} in the config), and that SQL Server authentication is enabled`;
  else if (e.code === 'ETIMEOUT') hint = `${where} did not answer within ${s.connectionTimeout} ms; check the host, port and firewall, or raise mssql.connectionTimeout`;
  return new EbrError('connect', `cannot connect to SQL Server at ${where} as ${s.user}: ${e.message}`, { hint, context: { ...context, host: where }, cause: err });
}

/** A statement that failed; a missing permission names the grant the statement needs. */
export function statementError(err: unknown, code: ErrorCode, statement: string, s: Pick<MssqlSettings, 'server' | 'port' | 'user'>, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err.withContext(context);
  const e = err as DriverError;
  const where = whereOf(s);
  const msg = `SQL Server at ${where} refused \`${statement}\`: ${e.message}${e.number !== undefined ? ` (Msg ${e.number})` : ''}`;
  if (e.number !== undefined && permissionNumbers.has(e.number)) {
    return new EbrError(code, msg, { hint: `login ${s.user} needs ${grantFor(statement)}`, context: { ...context, host: where, statement }, cause: err });
  }
  return new EbrError(code, msg, { context: { ...context, host: where, statement }, cause: err });
}
