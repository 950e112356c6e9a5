/**
 * A PostgreSQL catalog behind the synchronous DbHandle: a worker thread owns the pg client; each call
 * posts its statement and waits in Atomics.wait until the worker has put the answer on the port
 * (receiveMessageOnPort), so the catalog's call sites stay as they are on SQLite. A transaction takes a
 * transaction-scoped advisory lock first: writers exclude each other as SQLite's IMMEDIATE makes them.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { EbrError } from '../errors.js';
import { identityTables, toPostgres, type DbHandle, type RunResult, type Statement } from './db.js';
import type { Reply, Request } from './pg-worker.js';

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/**
 * The worker's compiled file. The main thread waits in Atomics.wait, so a worker that cannot start is
 * never heard from (its 'error' event needs the event loop): a missing file is named here instead.
 * Loaded from the TypeScript sources (the tests, in-process), the built copy of the worker is used.
 */
function workerFile(): URL {
  const beside = new URL('./pg-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  const built = new URL('../../dist/src/catalog/pg-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new EbrError('internal', `the PostgreSQL catalog's worker ${fileURLToPath(beside)} is missing`, { hint: 'reinstall ebr (or run `npm run build` in a checkout)' });
}

/** The advisory lock key every catalog write transaction takes ('ebr' in ASCII). */
const writerLock = 0x656272;

/** postgres://user:secret@host → postgres://user:***@host, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

export class PgDb implements DbHandle {
  readonly kind = 'postgres' as const;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag: Int32Array;
  private seq = 0;
  private depth = 0;
  open = true;

  constructor(
    readonly url: string,
    o: { password?: string; timeoutMs?: number } = {},
  ) {
    const timeoutMs = o.timeoutMs ?? Number(process.env.EBR_CATALOG_TIMEOUT_MS ?? 30_000);
    this.timeoutMs = timeoutMs;
    const sab = new SharedArrayBuffer(4);
    this.flag = new Int32Array(sab);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(workerFile(), {
      workerData: { url, ...(o.password !== undefined ? { password: o.password } : {}), flag: sab, port: port2, timeoutMs },
      transferList: [port2],
    });
    this.worker.on('error', () => undefined);
    this.worker.unref();
    this.port.unref();
    this.call({ op: 'connect' });
  }

  private readonly timeoutMs: number;

  private call(req: DistributiveOmit<Request, 'id'>): Reply {
    if (!this.open) throw new EbrError('internal', 'the catalog is closed');
    const id = ++this.seq;
    this.port.postMessage({ ...req, id });
    // The worker answers within its own query timeout; this bound only guards against a worker that died.
    const deadline = Date.now() + this.timeoutMs + 10_000;
    for (;;) {
      const seen = Atomics.load(this.flag, 0);
      let m = receiveMessageOnPort(this.port);
      while (m && (m.message as Reply).id !== id) m = receiveMessageOnPort(this.port);
      if (m) return this.check(m.message as Reply);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new EbrError('catalog', `the PostgreSQL catalog ${redactUrl(this.url)} did not answer within ${Math.round((this.timeoutMs + 10_000) / 1000)} s`, {
          hint: 'check that the catalog server is up and reachable from this host',
        });
      }
      Atomics.wait(this.flag, 0, seen, Math.min(left, 1000));
    }
  }

  private check(r: Reply): Reply {
    if (!r.error) return r;
    const where = redactUrl(this.url);
    if (r.error.lost || !r.error.code || /^(08|57P)/.test(r.error.code)) {
      throw new EbrError('catalog', `the PostgreSQL catalog ${where} is unavailable: ${r.error.message}`, {
        hint: 'check that the catalog server is up and reachable from this host; the next command connects again',
        context: r.error.code ? { sqlstate: r.error.code } : {},
      });
    }
    throw new EbrError('catalog', `the PostgreSQL catalog ${where} refused a statement: ${r.error.message}`, {
      hint: 'this is a defect or a catalog made by another ebr; `ebr catalog migrate` shows its schema version',
      context: { sqlstate: r.error.code },
    });
  }

  query(sql: string, values: unknown[] = [], background = false): Reply {
    return this.call({ op: 'query', sql, values: values.map((v) => (v === undefined ? null : typeof v === 'bigint' ? v.toString() : v)), ...(background ? { background } : {}) });
  }

  prepare(source: string): Statement {
    const t = toPostgres(source);
    const table = /^\s*INSERT\s+INTO\s+(\w+)/i.exec(source)?.[1];
    const returning = table !== undefined && identityTables.has(table) && !/\bRETURNING\b/i.test(source);
    const values = (params: unknown[]): unknown[] => {
      if (!t.names) return params;
      const o = (params[0] ?? {}) as Record<string, unknown>;
      return t.names.map((n) => o[n] ?? null);
    };
    return {
      get: (...p) => this.query(t.sql, values(p)).rows?.[0],
      all: (...p) => this.query(t.sql, values(p)).rows ?? [],
      run: (...p): RunResult => {
        const r = this.query(returning ? `${t.sql} RETURNING id` : t.sql, values(p));
        return { changes: r.rowCount ?? 0, lastInsertRowid: returning ? Number(r.rows?.[0]?.id ?? 0) : 0 };
      },
    };
  }

  /** A statement that must not consume the report of a lost connection (the lease heartbeat). */
  background(sql: string, params: unknown[]): RunResult {
    const r = this.query(toPostgres(sql).sql, params, true);
    return { changes: r.rowCount ?? 0, lastInsertRowid: 0 };
  }

  exec(sql: string): void {
    this.call({ op: 'query', sql: toPostgres(sql).sql });
  }

  get inTransaction(): boolean {
    return this.depth > 0;
  }

  transaction<T>(fn: () => T): T {
    if (this.depth > 0) {
      const sp = `ebr_sp${this.depth}`;
      this.query(`SAVEPOINT ${sp}`);
      this.depth++;
      try {
        const r = fn();
        this.query(`RELEASE SAVEPOINT ${sp}`);
        return r;
      } catch (err) {
        try {
          this.query(`ROLLBACK TO SAVEPOINT ${sp}`);
        } catch {
          // the outer transaction is rolled back anyway
        }
        throw err;
      } finally {
        this.depth--;
      }
    }
    this.query('BEGIN');
    this.depth = 1;
    try {
      this.query(`SELECT pg_advisory_xact_lock(${writerLock})`);
      const r = fn();
      this.query('COMMIT');
      return r;
    } catch (err) {
      try {
        this.query('ROLLBACK');
      } catch {
        // a lost connection has rolled it back already
      }
      throw err;
    } finally {
      this.depth = 0;
    }
  }

  schemaVersion(): number {
    this.query('CREATE TABLE IF NOT EXISTS ebr_schema (version BIGINT NOT NULL)');
    const r = this.query('SELECT MAX(version) AS v FROM ebr_schema').rows?.[0] as { v: number | null } | undefined;
    return r?.v ?? 0;
  }

  /** Read only: the version, or 0 when the schema table is not there yet. */
  peekSchemaVersion(): number {
    const t = this.query("SELECT to_regclass('ebr_schema') IS NOT NULL AS present").rows?.[0] as { present: boolean };
    if (!t.present) return 0;
    return ((this.query('SELECT MAX(version) AS v FROM ebr_schema').rows?.[0] as { v: number | null }).v ?? 0);
  }

  setSchemaVersion(v: number): void {
    this.query('CREATE TABLE IF NOT EXISTS ebr_schema (version BIGINT NOT NULL)');
    this.query('DELETE FROM ebr_schema');
    this.query('INSERT INTO ebr_schema (version) VALUES ($1)', [v]);
  }

  durable(): void {
    // Every PostgreSQL commit is flushed (synchronous_commit is the server's to set).
  }

  clock(): string {
    const r = this.query(`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS t`).rows?.[0] as { t: string };
    return r.t;
  }

  close(): void {
    if (!this.open) return;
    try {
      this.call({ op: 'close' });
    } catch {
      // closing a catalog that went away
    }
    this.open = false;
    void this.worker.terminate();
  }
}
