/**
 * Oracle's errors as ebr reports them: the host, the statement, and what to grant or change. The
 * driver (and SQL*Plus) report `ORA-nnnnn: text`; thin-mode network failures are `NJS-5xx`.
 */
import { EbrError, isAbort, type ErrorCode, type ErrorContext } from '../../src/errors.js';

export interface DriverError {
  errorNum?: number;
  code?: string;
  message: string;
}

export const archivelogFix = 'SHUTDOWN IMMEDIATE; STARTUP MOUNT; ALTER DATABASE ARCHIVELOG; ALTER DATABASE OPEN;';

/** The `ORA-nnnnn` of an error, from errorNum or the message. */
export function oraCode(err: unknown): string | undefined {
  const e = err as DriverError | undefined;
  if (typeof e?.errorNum === 'number' && e.errorNum > 0) return `ORA-${String(e.errorNum).padStart(5, '0')}`;
  const m = /\b(ORA-\d{5}|NJS-\d{3}|SP2-\d{4})\b/.exec(String(e?.code ?? '') + ' ' + String(e?.message ?? ''));
  return m?.[1];
}

/** The dictionary view a statement reads, as the object SELECT is granted on (V$DATABASE → V_$DATABASE). */
export function grantableViewOf(sql: string): string | undefined {
  const v = /\b(V\$\w+|DBA_\w+)/i.exec(sql)?.[1]?.toUpperCase();
  return v?.replace(/^V\$/, 'V_$');
}

/** The grant an ORA-01031 / ORA-00942 on this statement asks for. */
export function grantFor(sql: string, user: string): string {
  if (/^\s*ALTER\s+DATABASE\b/i.test(sql)) return `connect with privilege: SYSBACKUP (GRANT SYSBACKUP TO ${user}, with a password file), or GRANT ALTER DATABASE TO ${user}`;
  if (/^\s*ALTER\s+SYSTEM\b/i.test(sql)) return `connect with privilege: SYSBACKUP, or GRANT ALTER SYSTEM TO ${user}`;
  const view = grantableViewOf(sql);
  return view ? `GRANT SELECT ON ${view} TO ${user} (or GRANT SELECT ANY DICTIONARY TO ${user}; or connect with privilege: SYSBACKUP)` : `GRANT SELECT ANY DICTIONARY TO ${user}`;
}

const unreachable = new Set(['NJS-500', 'NJS-501', 'NJS-503', 'NJS-510', 'ORA-12154', 'ORA-12170', 'ORA-12514', 'ORA-12541', 'ORA-12543']);

export function connectError(err: unknown, o: { connectString: string; user: string; privilege?: string | undefined }, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err;
  if (isAbort(err)) return new EbrError('cancelled', 'cancelled while connecting', { context, cause: err });
  const code = oraCode(err);
  const message = (err as Error)?.message ?? String(err);
  const ctx = { ...context, host: o.connectString, user: o.user, ...(code ? { oracleError: code } : {}) };
  if (code && unreachable.has(code) || /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH/.test(message)) {
    return new EbrError('connect', `cannot reach the Oracle listener at ${o.connectString}: ${message}`, {
      hint: `check connectString (host:port/service_name) and that the listener runs on that host (lsnrctl status) and serves that service`,
      context: ctx,
      cause: err,
    });
  }
  if (code === 'ORA-01017') {
    return new EbrError('connect', `Oracle at ${o.connectString} refused user ${o.user}${o.privilege ? ` as ${o.privilege}` : ''}: ${message}`, {
      hint: o.privilege ? `check the password, and that ${o.user} is in the password file with ${o.privilege} (GRANT ${o.privilege} TO ${o.user}; SELECT * FROM V$PWFILE_USERS)` : 'check user and password (the password comes from the ${ENV} reference in the config)',
      context: ctx,
      cause: err,
    });
  }
  if (code === 'ORA-01031' || code === 'ORA-01045') {
    return new EbrError('connect', `user ${o.user} may not connect to ${o.connectString}${o.privilege ? ` as ${o.privilege}` : ''}: ${message}`, {
      hint: o.privilege ? `GRANT ${o.privilege} TO ${o.user} (needs a password file: orapwd)` : `GRANT CREATE SESSION TO ${o.user}`,
      context: ctx,
      cause: err,
    });
  }
  return new EbrError('connect', `cannot connect to Oracle at ${o.connectString} as ${o.user}: ${message}`, { hint: 'check the connectString, user and password of the instance', context: ctx, cause: err });
}

/** An error of one statement: the statement, the host, and the grant when the server said it was not allowed. */
export function statementError(err: unknown, sql: string, o: { connectString: string; user: string; code: ErrorCode; what: string }, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err;
  if (isAbort(err)) return new EbrError('cancelled', `cancelled during ${sql}`, { context, cause: err });
  const code = oraCode(err);
  const message = (err as Error)?.message ?? String(err);
  const ctx = { ...context, host: o.connectString, statement: sql, ...(code ? { oracleError: code } : {}) };
  let hint: string;
  if (code === 'ORA-01031' || code === 'ORA-00942' || code === 'ORA-01039') hint = grantFor(sql, o.user);
  else if (code === 'ORA-01123') hint = `media recovery is off: put the database in ARCHIVELOG mode (as SYSDBA: ${archivelogFix})`;
  else if (code === 'ORA-01146' || code === 'ORA-01149') hint = 'a datafile is already in backup mode (a backup that died?): run `ebr release` for this instance, then back up again';
  else if (code === 'ORA-01109') hint = 'the database is not open: ALTER DATABASE OPEN';
  else if (code === 'ORA-03113' || code === 'ORA-03114' || code?.startsWith('NJS-')) hint = 'the session to the server was lost; if it was during the window run `ebr release` for this instance to make sure backup mode ended';
  else hint = 'see the Oracle error text; the statement is in the context';
  return new EbrError(o.code, `${o.what} on ${o.connectString}: ${sql}: ${message}`, { hint, context: ctx, cause: err });
}
