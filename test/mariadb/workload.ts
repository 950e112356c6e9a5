/** Writers for the tests: a ticker that commits as fast as it can, and random transfers between accounts. */
import type mysql from 'mysql2/promise';
import { waitFor } from '../helpers/env.js';
import type { TestServer } from './server.js';

export interface Writer {
  commits(): number;
  /** Longest time between two commits, in ms, since the writer started (or since reset). */
  worstGapMs(): number;
  resetGap(): void;
  msSinceLastCommit(): number;
  /** Gaps between commits longer than 50 ms since the last reset, as wall-clock ranges. */
  gaps(): Array<{ from: number; to: number; ms: number }>;
  waitForCommits(n: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  errors: string[];
}

/** Inserts one row per transaction into `table (at)` until stopped (pausing pauseMs after each). */
export async function startWriter(server: TestServer, table: string, pauseMs = 0): Promise<Writer> {
  const conn = await server.connect();
  return loop(conn, async (c) => {
    await c.query(`INSERT INTO ${table} (at) VALUES (NOW(6))`);
  }, pauseMs);
}

/** Moves a random amount between two random accounts in one transaction, until stopped. */
export async function startTransfers(server: TestServer, table: string, accounts: number): Promise<Writer> {
  const conn = await server.connect();
  return loop(conn, async (c) => {
    const a = 1 + Math.floor(Math.random() * accounts);
    let b = 1 + Math.floor(Math.random() * accounts);
    if (b === a) b = (b % accounts) + 1;
    const amount = 1 + Math.floor(Math.random() * 100);
    await c.beginTransaction();
    try {
      await c.query(`UPDATE ${table} SET balance = balance - ? WHERE id = ?`, [amount, a]);
      await c.query(`UPDATE ${table} SET balance = balance + ? WHERE id = ?`, [amount, b]);
      await c.commit();
    } catch (err) {
      await c.rollback().catch(() => undefined);
      throw err;
    }
  });
}

function loop(conn: mysql.Connection, step: (c: mysql.Connection) => Promise<void>, pauseMs = 0): Writer {
  let n = 0;
  let stopped = false;
  let last = performance.now();
  let worst = 0;
  let gaps: Array<{ from: number; to: number; ms: number }> = [];
  const errors: string[] = [];
  const running = (async () => {
    while (!stopped) {
      try {
        await step(conn);
        n++;
        const now = performance.now();
        worst = Math.max(worst, now - last);
        if (now - last > 50) gaps.push({ from: Date.now() - (now - last), to: Date.now(), ms: now - last });
        last = now;
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      } catch (err) {
        errors.push((err as Error).message);
        if (errors.length > 20) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  return {
    commits: () => n,
    worstGapMs: () => worst,
    msSinceLastCommit: () => performance.now() - last,
    gaps: () => gaps,
    resetGap() {
      worst = 0;
      gaps = [];
      last = performance.now();
    },
    async waitForCommits(target, timeoutMs = 10_000) {
      await waitFor(`${target} commits (have ${n}; errors: ${errors.slice(-2).join('; ')})`, () => n >= target || undefined, timeoutMs, 10);
    },
    async stop() {
      stopped = true;
      await running;
      await conn.end().catch(() => conn.destroy());
    },
    errors,
  };
}

/**
 * One explicit multi-statement transaction per step: moves an amount between two accounts (locked in
 * id order, so sessions never deadlock) and logs the move in `transfers`. The sum of balances never
 * changes, and every account's balance is its opening plus what the log says it received minus what it
 * sent: a transaction half applied, or lost while a later one that built on it is kept, breaks one of
 * the two.
 */
export async function startLoggedTransfers(server: TestServer, schema: string, accounts: number, pauseMs = 0): Promise<Writer> {
  const conn = await server.connect();
  return loop(conn, async (c) => {
    const a = 1 + Math.floor(Math.random() * accounts);
    let b = 1 + Math.floor(Math.random() * accounts);
    if (b === a) b = (b % accounts) + 1;
    const amount = 1 + Math.floor(Math.random() * 100);
    const [lo, hi] = a < b ? [a, b] : [b, a];
    const delta = (id: number) => (id === a ? -amount : amount);
    await c.query('START TRANSACTION');
    try {
      await c.query(`UPDATE ${schema}.accounts SET balance = balance + ? WHERE id = ?`, [delta(lo), lo]);
      await c.query(`UPDATE ${schema}.accounts SET balance = balance + ? WHERE id = ?`, [delta(hi), hi]);
      await c.query(`INSERT INTO ${schema}.transfers (src, dst, amount) VALUES (?, ?, ?)`, [a, b, amount]);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }, pauseMs);
}
