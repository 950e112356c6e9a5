/**
 * One oracledb connection (thin mode: no Oracle client libraries), loaded only when a command talks
 * to the server. The types declare only the slice of the driver ebr uses, so a stand-in can provide it.
 */
import type { InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import { loadDriver } from '../../src/util/driver.js';
import type { OracleSettings } from './oracle-config.js';
import { connectError, statementError } from './oracle-errors.js';

interface OracleConnection {
  execute<R>(sql: string, binds: unknown[] | Record<string, unknown>, options: { outFormat: number }): Promise<{ rows?: R[] }>;
  close(): Promise<void>;
  break?(): Promise<void>;
}

interface OracleDriver {
  OUT_FORMAT_OBJECT: number;
  SYSDBA: number;
  SYSBACKUP: number;
  getConnection(o: { user: string; password: string; connectString: string; privilege?: number; connectTimeout?: number }): Promise<OracleConnection>;
}

export interface Sql {
  /** Runs one statement; rows come as objects keyed by Oracle's upper-case column names. */
  query<R = Record<string, unknown>>(sql: string, what: string, code?: ErrorCode, phase?: string, signal?: AbortSignal): Promise<R[]>;
  close(): Promise<void>;
  readonly connectString: string;
}

export async function openSql(instance: InstanceContext<OracleSettings>, context: ErrorContext, signal?: AbortSignal): Promise<Sql> {
  const s = instance.settings;
  throwIfAborted(signal, context);
  const driver = await loadDriver<OracleDriver>('oracledb', () => import('oracledb'), { ...context, host: s.connectString });
  let conn: OracleConnection;
  try {
    conn = await driver.getConnection({
      user: s.user,
      password: s.password,
      connectString: s.connectString,
      connectTimeout: s.connectTimeoutS,
      ...(s.privilege ? { privilege: s.privilege === 'SYSDBA' ? driver.SYSDBA : driver.SYSBACKUP } : {}),
    });
  } catch (err) {
    throw connectError(err, s, context);
  }
  let closed = false;
  return {
    connectString: s.connectString,
    async query<R>(sql: string, what: string, code: ErrorCode = 'discover', phase?: string, signal?: AbortSignal) {
      const ctx = { ...context, ...(phase ? { phase } : {}) };
      if (closed) throw new EbrError(code, `${what}: the session to ${s.connectString} is closed`, { context: { ...ctx, statement: sql } });
      throwIfAborted(signal, ctx);
      // Cancelling breaks the statement on the server instead of waiting for it; unblock passes no signal, so END BACKUP is never broken.
      const onAbort = () => void conn.break?.().catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const r = await conn.execute<R>(sql, [], { outFormat: driver.OUT_FORMAT_OBJECT });
        return r.rows ?? [];
      } catch (err) {
        throw statementError(err, sql, { connectString: s.connectString, user: s.user, code, what }, ctx);
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await conn.close().catch(() => undefined);
    },
  };
}
