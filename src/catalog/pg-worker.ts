/**
 * The worker thread behind PgDb: owns the one pg client of a PostgreSQL catalog and answers each
 * request on its port, then wakes the caller, which waits in Atomics.wait (see pg-db.ts). A lost
 * connection is reported once, to the next request that is not a heartbeat, and the request after it
 * connects again: a backup whose catalog went away mid-way fails instead of carrying on unseen.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import pg from 'pg';

interface Data {
  url: string;
  password?: string;
  flag: SharedArrayBuffer;
  port: MessagePort;
  timeoutMs: number;
}

export type Request =
  | { id: number; op: 'query'; sql: string; values?: unknown[]; background?: boolean }
  | { id: number; op: 'connect' }
  | { id: number; op: 'close' };

export type Reply = { id: number; rows?: Record<string, unknown>[]; rowCount?: number; error?: { message: string; code?: string; lost?: boolean } };

const data = workerData as Data;
const flag = new Int32Array(data.flag);
// Sizes and counts are BIGINT and SUM/AVG numeric: numbers here, as SQLite gives them.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

let client: pg.Client | undefined;
let lost: Error | undefined;

async function connect(): Promise<pg.Client> {
  const c = new pg.Client({
    connectionString: data.url,
    ...(data.password !== undefined ? { password: data.password } : {}),
    connectionTimeoutMillis: data.timeoutMs,
    query_timeout: data.timeoutMs,
    application_name: 'ebr',
  });
  c.on('error', (err) => {
    if (client === c) lost ??= err;
  });
  c.on('end', () => {
    if (client === c) lost ??= new Error('the server closed the connection');
  });
  await c.connect();
  client = c;
  lost = undefined;
  return c;
}

function drop(): void {
  const c = client;
  client = undefined;
  lost = undefined;
  c?.end().catch(() => undefined);
}

async function handle(m: Request): Promise<Omit<Reply, 'id'>> {
  if (m.op === 'close') {
    await client?.end().catch(() => undefined);
    client = undefined;
    return {};
  }
  if (lost) {
    const err = lost;
    if (!(m.op === 'query' && m.background)) drop();
    return { error: { message: `the connection to the catalog was lost: ${err.message}`, lost: true } };
  }
  const c = client ?? (await connect());
  if (m.op === 'connect') return {};
  try {
    const r = await c.query({ text: m.sql, ...(m.values ? { values: m.values } : {}) });
    const last = Array.isArray(r) ? (r.at(-1) as pg.QueryResult) : r;
    return { rows: last?.rows ?? [], rowCount: last?.rowCount ?? 0 };
  } catch (err) {
    const e = err as Error & { code?: string };
    if (lost || client !== c) {
      // This error is how the loss shows; the next request connects again.
      drop();
      return { error: { message: `the connection to the catalog was lost: ${e.message}`, lost: true } };
    }
    return { error: { message: e.message, ...(e.code ? { code: e.code } : {}) } };
  }
}

data.port.on('message', (m: Request) => {
  void handle(m)
    .catch((err: Error & { code?: string }) => ({ error: { message: err.message, ...(err.code ? { code: err.code } : {}), lost: true } }))
    .then((r) => {
      data.port.postMessage({ id: m.id, ...r } satisfies Reply);
      Atomics.store(flag, 0, m.id);
      Atomics.notify(flag, 0);
    });
});
