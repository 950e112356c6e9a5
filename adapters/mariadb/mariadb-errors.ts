/**
 * Driver and server errors mapped to EbrError codes with a hint a DBA can act on. Server errors are
 * recognised by their number (stable across MariaDB and MySQL); anything unknown keeps the original
 * as `cause`.
 */
import { EbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';

interface DriverError {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  fatal?: boolean;
  message?: string;
}

const privilegeHint =
  'grant the backup user what it needs: GRANT RELOAD, PROCESS, BINLOG MONITOR, SELECT ON *.* (MariaDB); BACKUP_ADMIN, RELOAD, PROCESS, REPLICATION CLIENT on MySQL 8';

/** What went wrong with a driver error, as an EbrError whose code is `code` unless the error says more. */
export function sqlError(err: unknown, code: ErrorCode, what: string, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err.withContext(context);
  const e = (err ?? {}) as DriverError;
  const detail = e.sqlMessage ?? e.message ?? String(err);
  const make = (c: ErrorCode, hint: string | undefined) => new EbrError(c, `${what}: ${detail}`, { hint, context, cause: err });
  switch (e.errno) {
    case 1045: // ER_ACCESS_DENIED_ERROR
    case 1698: // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
      return make('connect', 'check mariadb.user and mariadb.password (use ${ENV} for the password) and that the user may log in from this host or socket');
    case 1044: // ER_DBACCESS_DENIED_ERROR
    case 1142: // ER_TABLEACCESS_DENIED_ERROR
    case 1227: // ER_SPECIFIC_ACCESS_DENIED_ERROR
      return make(code, privilegeHint);
    case 1205: // ER_LOCK_WAIT_TIMEOUT
    case 1969: // ER_STATEMENT_TIMEOUT
    case 3024: // MySQL ER_QUERY_TIMEOUT
      return make(
        code,
        'another session held a conflicting lock (a long DDL, FLUSH TABLES WITH READ LOCK, or another backup); find it in SHOW PROCESSLIST, or raise mariadb.lockWaitTimeoutS',
      );
  }
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOENT':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
      return make('connect', 'is the server running? check mariadb.socket, or mariadb.host and mariadb.port');
    case 'PROTOCOL_CONNECTION_LOST':
    case 'ECONNRESET':
    case 'EPIPE':
      return make(code, 'the server closed the connection; look in its error log for a restart or a KILL');
  }
  return make(code, undefined);
}

/** True for a lost connection: the server then ends any backup stage or lock the session held. */
export function isConnectionLost(err: unknown): boolean {
  const e = (err ?? {}) as DriverError;
  return e.fatal === true || e.code === 'PROTOCOL_CONNECTION_LOST' || e.code === 'ECONNRESET' || e.code === 'EPIPE';
}
