/**
 * One SQL Server session through the mssql driver (tedious): a pool of exactly one connection, so
 * every statement from SUSPEND to BACKUP runs on the session that holds the freeze. Every result set
 * and every info message of a statement is read: BACKUP and RESTORE report some failures only as a
 * message beside a successful-looking result, and those fail the step here.
 */
import { EbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import { loadDriver } from '../../src/util/driver.js';
import type { MssqlSettings } from './mssql-config.js';
import { connectError, statementError, whereOf, type DriverError } from './mssql-errors.js';

/** The slice of the mssql API ebr uses (a stand-in implements the same). */
export interface InfoMessage {
  message: string;
  number?: number;
  class?: number;
  state?: number;
}
interface MssqlRequest {
  on(event: 'info', listener: (info: InfoMessage) => void): unknown;
  query(sql: string): Promise<{ recordsets: Array<Array<Record<string, unknown>>>; recordset?: Array<Record<string, unknown>>; rowsAffected: number[] }>;
}
interface MssqlPool {
  connect(): Promise<unknown>;
  request(): MssqlRequest;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): Promise<unknown>;
}
export interface MssqlDriver {
  ConnectionPool: new (config: Record<string, unknown>) => MssqlPool;
}

export interface StatementResult {
  recordsets: Array<Array<Record<string, unknown>>>;
  /** The first result set, the one most statements answer with. */
  rows: Array<Record<string, unknown>>;
  infos: InfoMessage[];
}

export interface MssqlConnection {
  /** Runs one batch; an error, or an error-level message among its info messages or result sets, throws. */
  run(sql: string, code: ErrorCode, context?: ErrorContext): Promise<StatementResult>;
  /** The error that ended the session, if it ended. */
  lost(): Error | undefined;
  close(): Promise<void>;
}

/** Severity 11 and above is an error in SQL Server; below it a message is only information. */
const errorSeverity = 11;

export async function openConnection(s: MssqlSettings, o: { instance: string; requestTimeout: number; signal?: AbortSignal }): Promise<MssqlConnection> {
  const context = { instance: o.instance, phase: 'connect', host: whereOf(s) };
  const mssql = await loadDriver<MssqlDriver>('mssql', () => import('mssql'), context);
  const pool = new mssql.ConnectionPool({
    server: s.server,
    port: s.port,
    database: s.database,
    user: s.user,
    ...(s.password !== undefined ? { password: s.password } : {}),
    options: { ...s.options, appName: `ebr ${o.instance}` },
    connectionTimeout: s.connectionTimeout,
    requestTimeout: o.requestTimeout,
    // One connection: the freeze belongs to the session, and a pool that quietly opened another would lose it.
    pool: { min: 0, max: 1 },
  });
  let lost: Error | undefined;
  let closing = false;
  // The session ending must not crash ebr; lost() reports it and the next statement refuses to run.
  pool.on('error', (err) => {
    if (!closing) lost ??= err;
  });
  const onAbort = () => void pool.close().catch(() => undefined);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await pool.connect();
  } catch (err) {
    throw connectError(err, s, context);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  const sessionLost = (err: Error, statement: string, code: ErrorCode, ctx: ErrorContext) =>
    new EbrError(code, `the SQL Server session at ${whereOf(s)} was lost before \`${statement}\`: ${err.message}`, {
      hint: 'SQL Server ends a snapshot freeze when its session ends, so a snapshot taken after that may be torn; nothing was recorded. Check the server error log for why the connection ended and run the backup again',
      context: { ...ctx, host: whereOf(s), statement },
      cause: err,
    });

  return {
    async run(sql, code, ctx = {}) {
      const full = { instance: o.instance, ...ctx };
      if (lost) throw sessionLost(lost, sql, code, full);
      const request = pool.request();
      const infos: InfoMessage[] = [];
      request.on('info', (info) => infos.push(info));
      let result;
      try {
        result = await request.query(sql);
      } catch (err) {
        if (lost) throw sessionLost(lost, sql, code, full);
        throw statementError(err, code, sql, s, full);
      }
      const recordsets = result.recordsets ?? [];
      const hidden = infos.find((i) => (i.class ?? 0) >= errorSeverity) ?? errorRow(recordsets);
      if (hidden) {
        const err = Object.assign(new Error(hidden.message), { number: hidden.number }) as DriverError;
        throw statementError(err, code, sql, s, { ...full, messages: infos.map((i) => i.message) });
      }
      return { recordsets, rows: recordsets[0] ?? [], infos };
    },
    lost: () => lost,
    async close() {
      closing = true;
      await pool.close().catch(() => undefined);
    },
  };
}

/** A result row shaped like a TRY…CATCH report (ErrorNumber, ErrorMessage) is a failure too. */
function errorRow(recordsets: Array<Array<Record<string, unknown>>>): InfoMessage | undefined {
  for (const set of recordsets) {
    for (const row of set) {
      const message = row.ErrorMessage ?? row.error_message;
      if (typeof message === 'string' && message) {
        const number = Number(row.ErrorNumber ?? row.error_number);
        return { message, ...(Number.isFinite(number) ? { number } : {}), class: 16 };
      }
    }
  }
  return undefined;
}
