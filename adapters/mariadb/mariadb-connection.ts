/**
 * One dedicated server connection (never a pool, never a reconnect): backup stages and instance locks
 * belong to the session that took them, so the connection that blocks must be the one that unblocks,
 * and a silently replaced connection would have lost the lock. mysql2 is imported here, lazily.
 */
import { EbrError, type ErrorContext } from '../../src/errors.js';
import { sqlError } from './mariadb-errors.js';

export type Row = Record<string, unknown>;

/** The slice of a connection the adapter uses; tests substitute a recorder with the same shape. */
export interface Sql {
  /** The server's id for this session (CONNECTION_ID()). */
  readonly threadId: number;
  /** Runs one statement; rows for a SELECT/SHOW, an empty list otherwise. */
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  /** True once the connection is gone (closed, dropped, destroyed). */
  readonly closed: boolean;
  /** True while a statement runs. */
  readonly busy: boolean;
  /** Drops the connection at once without waiting for a running statement; the server frees what it held. */
  destroy(): void;
  /** Closes politely. */
  end(): Promise<void>;
}

export interface ConnectOptions {
  socket?: string;
  host?: string;
  port?: number;
  user: string;
  password?: string;
  database?: string;
  connectTimeoutMs?: number;
}

export async function openSql(options: ConnectOptions, context: ErrorContext, signal?: AbortSignal): Promise<Sql> {
  const mysql = await import('mysql2/promise');
  let conn: Awaited<ReturnType<typeof mysql.createConnection>>;
  try {
    conn = await mysql.createConnection({
      ...(options.socket ? { socketPath: options.socket } : { host: options.host ?? 'localhost', port: options.port ?? 3306 }),
      user: options.user,
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.database ? { database: options.database } : {}),
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      multipleStatements: false,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
    });
  } catch (err) {
    const where = options.socket ?? `${options.host ?? 'localhost'}:${options.port ?? 3306}`;
    throw sqlError(err, 'connect', `cannot connect to ${where} as ${options.user}`, context);
  }
  let closed = false;
  let busy = 0;
  // Without a listener a dropped connection would be an unhandled 'error' event and end the process.
  conn.on('error', () => {
    closed = true;
  });
  const raw = (conn as unknown as { connection?: { stream?: { on(e: string, f: () => void): void } } }).connection;
  raw?.stream?.on('close', () => {
    closed = true;
  });
  const destroy = () => {
    if (closed) return;
    closed = true;
    conn.destroy();
  };
  const onAbort = () => destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    threadId: conn.threadId,
    get closed() {
      return closed;
    },
    get busy() {
      return busy > 0;
    },
    async query(sql, params) {
      if (closed) {
        throw new EbrError('connect', `the server connection is closed (running: ${sql.slice(0, 60)})`, {
          hint: 'the connection was lost or cancelled; whatever it held on the server has been released',
          context,
        });
      }
      busy++;
      try {
        const [rows] = await conn.query(sql, params);
        return Array.isArray(rows) ? (rows as Row[]) : [];
      } finally {
        busy--;
      }
    },
    destroy,
    async end() {
      signal?.removeEventListener('abort', onAbort);
      if (closed) return;
      closed = true;
      try {
        await conn.end();
      } catch {
        conn.destroy();
      }
    },
  };
}

/** Connection options from the instance's settings, paths resolved against the config file. */
export function connectOptionsOf(s: { socket?: string; host?: string; port?: number; user: string; password?: string; database?: string }, resolvePath: (p: string) => string): ConnectOptions {
  return {
    ...(s.socket ? { socket: resolvePath(s.socket) } : {}),
    ...(s.host ? { host: s.host } : {}),
    ...(s.port ? { port: s.port } : {}),
    user: s.user,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.database ? { database: s.database } : {}),
  };
}
