/** What the `pg` driver throws, turned into EbrErrors that say what to fix. */
import { EbrError, asEbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import type { PostgresSettings } from './postgres-config.js';

interface PgError extends Error {
  code?: string;
  severity?: string;
  hint?: string;
}

export function connectError(err: unknown, s: PostgresSettings, context: ErrorContext): EbrError {
  const e = err as PgError;
  const where = s.host.startsWith('/') ? `the socket in ${s.host} port ${s.port}` : `${s.host}:${s.port}`;
  const code = e.code ?? '';
  let hint = `check that PostgreSQL runs and listens on ${where} (instances.${String(context.instance)}.postgres.host/port)`;
  if (code === '28P01' || code === '28000') hint = `check user ${s.user} and its password (set password: \${PGPASSWORD} in the config and export PGPASSWORD), and pg_hba.conf`;
  else if (code === '3D000') hint = `database ${s.database} does not exist; set postgres.database to one that does (postgres)`;
  else if (code === '53300') hint = 'the server has no free connection slots; raise max_connections or retry later';
  return new EbrError('connect', `cannot connect to PostgreSQL at ${where} as ${s.user}: ${e.message}`, { hint, context, cause: err });
}

/** A failed statement; insufficient privilege gets a hint naming the grants. */
export function queryError(err: unknown, code: ErrorCode, what: string, context: ErrorContext): EbrError {
  if (err instanceof EbrError) return err.withContext(context);
  const e = err as PgError;
  if (e.code === '42501') {
    return new EbrError(code, `${what}: ${e.message}`, {
      hint: 'connect as a superuser, or GRANT pg_read_all_settings, pg_checkpoint and EXECUTE ON FUNCTION pg_backup_start, pg_backup_stop to the backup role',
      context,
      cause: err,
    });
  }
  if (e.code === '55000' && /wal_level/i.test(e.message)) {
    return new EbrError(code, `${what}: ${e.message}`, { hint: "set wal_level = replica (or logical) in postgresql.conf and restart the server", context, cause: err });
  }
  if (e.code) return new EbrError(code, `${what}: ${e.message}${e.hint ? ` (${e.hint})` : ''}`, { context, cause: err });
  const wrapped = asEbrError(err, code, context);
  if (!wrapped.message.startsWith(what)) wrapped.message = `${what}: ${wrapped.message}`;
  return wrapped;
}
