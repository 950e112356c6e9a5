/**
 * Backups taken while many sessions commit at once. When BACKUP STAGE BLOCK_COMMIT returns, the last
 * transactions that committed before it are in the binlog, but InnoDB may not yet have written their
 * commit to the redo log (with the binlog on, InnoDB leaves that to the binlog's crash recovery). ebr
 * flushes InnoDB's log while commits are held, so the frozen files must hold none of them as merely
 * prepared; a restore still lets the server resolve whatever it finds prepared from the frozen binlog,
 * as its own crash recovery does (commit what the binlog has, roll back the rest), and nothing else.
 *
 * The binlogs live outside the data directory, where Debian's `log_bin = /var/log/mysql/mysql-bin.log`
 * puts them: restores used to leave them out of the index they wrote, and the temporary server then
 * refused to start ("Found N prepared transactions! … --tc-heuristic-recover").
 *
 * Ten sessions run transfers (START TRANSACTION; UPDATE; UPDATE; INSERT into a log; COMMIT) and one
 * session inserts into an autoincrement ticker. Three backups are taken while they run; each restore
 * kind then has to keep the sum of balances, the per-account ledger and the ticker's ids 1..N, and hold
 * exactly the rows the binlog has up to the recorded position (plus the replayed ones).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { withRestoredServer, writeConfig, type EbrSetup } from './mariadb-instance.js';
import { createServer, serverNow, type TestServer } from './server.js';
import { startLoggedTransfers, startWriter, type Writer } from './workload.js';

const accounts = 100;
const opening = 1000;
const sessions = 10;

interface Backup {
  backupId: string;
  blockWindowMs: number;
  /** file:position recorded inside the window. */
  logStart: string;
}

interface State {
  accounts: number;
  total: number;
  /** Accounts whose balance is not the opening plus what the transfer log says they got. */
  offLedger: number;
  transfers: number;
  ticks: number;
  /** The ticker's ids are exactly 1..ticks. */
  ticksContiguous: boolean;
  checksum: string;
}

async function stateOf(s: TestServer): Promise<State> {
  const [a] = await s.query<{ n: number; total: string }>('SELECT COUNT(*) AS n, SUM(balance) AS total FROM shop.accounts');
  const [l] = await s.query<{ n: number }>(
    `SELECT COUNT(*) AS n FROM shop.accounts a LEFT JOIN (
       SELECT id, SUM(d) AS d FROM (SELECT dst AS id, amount AS d FROM shop.transfers UNION ALL SELECT src, -amount FROM shop.transfers) x GROUP BY id
     ) t ON t.id = a.id WHERE a.balance <> ${opening} + COALESCE(t.d, 0)`,
  );
  const [tr] = await s.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.transfers');
  const [t] = await s.query<{ n: number; lo: number | null; hi: number | null }>('SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM shop.ticks');
  const sums = await s.query<{ Table: string; Checksum: number }>('CHECKSUM TABLE shop.accounts, shop.transfers, shop.ticks');
  const ticks = Number(t!.n);
  return {
    accounts: Number(a!.n),
    total: Number(a!.total),
    offLedger: Number(l!.n),
    transfers: Number(tr!.n),
    ticks,
    ticksContiguous: ticks === 0 || (Number(t!.lo) === 1 && Number(t!.hi) === ticks),
    checksum: sums.map((r) => `${r.Table}=${r.Checksum}`).join(' '),
  };
}

function expectInvariants(s: State, what: string): void {
  expect({ accounts: s.accounts, total: s.total, offLedger: s.offLedger, ticksContiguous: s.ticksContiguous }, what).toEqual({
    accounts,
    total: accounts * opening,
    offLedger: 0,
    ticksContiguous: true,
  });
}

/**
 * Rows of each table the binlog holds up to a point, counted by mariadb-binlog from the archived
 * binlogs: up to file:position, or up to the first event stamped at or after a second (what
 * --stop-datetime replays).
 */
async function rowsUpTo(archive: string, stop: { logStart: string } | { second: string }): Promise<{ transfers: number; ticks: number }> {
  const all = readdirSync(archive).filter((f) => /^[\w-]+\.\d+$/.test(f));
  const number = (f: string) => Number(f.split('.').pop());
  let files = all;
  let args: string[];
  if ('logStart' in stop) {
    const [file, position] = stop.logStart.split(':') as [string, string];
    files = all.filter((f) => number(f) <= number(file));
    args = [`--stop-position=${position}`];
  } else {
    args = [`--stop-datetime=${stop.second}`];
  }
  files = files.sort((a, b) => number(a) - number(b)).map((f) => path.join(archive, f));
  const { stdout } = await promisify(execFile)('/usr/bin/mariadb-binlog', ['--base64-output=decode-rows', '-v', ...args, ...files], { maxBuffer: 1 << 30 });
  const count = (table: string) => stdout.split('\n').filter((line) => line.startsWith(`### INSERT INTO \`shop\`.\`${table}\``)).length;
  return { transfers: count('transfers'), ticks: count('ticks') };
}

interface RestoreDoc {
  notes: string[];
  details: { preparedAtRecovery?: number; reachesTarget?: boolean; imported?: Record<string, string[]> };
}

describe('mariadb: restores of backups taken while transactions commit at once (binlogs outside the data directory)', () => {
  const t = tempDir('ebr-mdb-prepared-');
  let server: TestServer;
  let e: EbrSetup;
  const backups: Backup[] = [];
  let until = '';
  let live: State;
  let archive = '';
  /** Prepared transactions each restore's crash recovery met, as its notes report them. */
  const prepared: Record<string, number> = {};
  let atFirstBackup: State | undefined;

  const restore = async (what: string, args: string[]): Promise<RestoreDoc> => {
    const r = await e.ebrJson<RestoreDoc>(['restore', ...args]);
    console.log(`${what}:\n${r.notes.join('\n')}`);
    prepared[what] = r.details.preparedAtRecovery ?? -1;
    return r;
  };

  beforeAll(async () => {
    // Where Debian's commented-out `log_bin = /var/log/mysql/mysql-bin.log` puts them: not in the data directory.
    const binlogs = path.join(t.dir, 'log-mysql');
    mkdirSync(binlogs);
    server = await createServer({ args: [`--log-bin=${binlogs}/mysql-bin`] });
    await server.query('CREATE DATABASE shop');
    await server.query('CREATE TABLE shop.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
    await server.query(`INSERT INTO shop.accounts VALUES ${Array.from({ length: accounts }, (_, i) => `(${i + 1}, ${opening})`).join(',')}`);
    await server.query('CREATE TABLE shop.transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL, amount INT NOT NULL) ENGINE=InnoDB');
    await server.query('CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
    e = writeConfig(t.dir, server);
    archive = path.join(t.dir, 'backups/mdb/binlog');

    // Paced, so that the binlogs a restore replays stay small; with ten sessions some commit all the time.
    const writers: Writer[] = [];
    const t0 = performance.now();
    try {
      for (let i = 0; i < sessions; i++) writers.push(await startLoggedTransfers(server, 'shop', accounts, 30));
      const ticker = await startWriter(server, 'shop.ticks', 5);
      writers.push(ticker);
      await ticker.waitForCommits(100, 30_000);
      for (let i = 0; i < 3; i++) {
        const b = await e.ebrJson<{ backupId: string; blockWindowMs: number }>(['backup']);
        const [file, position] = readFileSync(path.join(t.dir, 'backups/mdb', b.backupId, 'meta/binlog_position'), 'utf8').split('\t');
        backups.push({ ...b, logStart: `${file}:${position}` });
        if (i === 1) {
          // The target of the point-in-time restore of the second backup, with commits on both sides.
          await new Promise((r) => setTimeout(r, 1200));
          until = await serverNow(server);
          await new Promise((r) => setTimeout(r, 1200));
        }
      }
      await ticker.waitForCommits(ticker.commits() + 50, 30_000);
    } finally {
      for (const w of writers) await w.stop();
    }
    const seconds = (performance.now() - t0) / 1000;
    const transfers = writers.slice(0, sessions).reduce((n, w) => n + w.commits(), 0);
    const ticks = writers[sessions]!.commits();
    console.log(
      `${sessions} transfer sessions: ${transfers} transactions in ${seconds.toFixed(1)} s (${(transfers / seconds).toFixed(0)}/s); ticker: ${ticks} commits (${(ticks / seconds).toFixed(0)}/s); ` +
        `backups ${backups.map((b) => `${b.backupId} at ${b.logStart}, window ${b.blockWindowMs.toFixed(0)} ms`).join('; ')}`,
    );
    expect(writers.flatMap((w) => w.errors)).toEqual([]);
    live = await stateOf(server);
    expectInvariants(live, 'the live server');
    // Everything up to now into the archive: a restore without --until then ends where the live server is.
    await e.ebrJson(['binlog', 'sync']);
  });

  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('--to DIR rolls forward to the end of the archive and ends exactly where the live server is', async () => {
    const to = path.join(t.dir, 'full');
    await restore('full restore of the third backup', ['--backup', backups[2]!.backupId, '--to', to]);
    const restored = await withRestoredServer(to, stateOf);
    expectInvariants(restored, 'full restore');
    expect(restored).toEqual(live);
  });

  it('--until a time after the backup replays exactly the transactions before that second', async () => {
    const b = backups[1]!;
    const second = until.slice(0, 19);
    const [atBackup, expected] = [await rowsUpTo(archive, b), await rowsUpTo(archive, { second })];
    const to = path.join(t.dir, 'until');
    const r = await restore(`--until ${until} of the second backup`, ['--backup', b.backupId, '--to', to, '--until', until]);
    expect(r.details.reachesTarget).toBe(true);
    const restored = await withRestoredServer(to, async (s) => ({
      state: await stateOf(s),
      after: Number((await s.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.ticks WHERE at >= ?', [second]))[0]!.n),
    }));
    expectInvariants(restored.state, '--until restore');
    expect(restored.after, 'ticks stamped at or after the target second').toBe(0);
    expect({ transfers: restored.state.transfers, ticks: restored.state.ticks }).toEqual(expected);
    expect(expected.ticks).toBeGreaterThan(atBackup.ticks);
    expect(expected.transfers).toBeGreaterThan(atBackup.transfers);
  });

  it('with the binlog archive out of reach, --to DIR holds exactly the transactions up to the backup\'s position', async () => {
    const b = backups[0]!;
    const expected = await rowsUpTo(archive, b);
    const to = path.join(t.dir, 'at-backup');
    renameSync(archive, `${archive}.aside`);
    let r: RestoreDoc;
    try {
      r = await restore('full restore of the first backup, no archive', ['--backup', b.backupId, '--to', to]);
    } finally {
      renameSync(`${archive}.aside`, archive);
    }
    expect(r.notes.join('\n')).toMatch(/restored to the backup's time only/);
    atFirstBackup = await withRestoredServer(to, stateOf);
    expectInvariants(atFirstBackup, 'restore at the backup');
    expect({ transfers: atFirstBackup.transfers, ticks: atFirstBackup.ticks }).toEqual(expected);
  });

  it('an online --partial restore brings the schema back exactly as it was at the backup\'s position', async () => {
    const b = backups[0]!;
    const expected = await rowsUpTo(archive, b);
    const r = await restore('online partial restore of shop from the first backup', ['--backup', b.backupId, '--partial', 'shop']);
    expect(r.details.imported!.shop!.sort()).toEqual(['accounts', 'ticks', 'transfers']);
    const restored = await stateOf(server);
    expectInvariants(restored, 'partial restore');
    expect({ transfers: restored.transfers, ticks: restored.ticks }).toEqual(expected);
    if (atFirstBackup) expect(restored.checksum).toBe(atFirstBackup.checksum);
  });

  it('the frozen files held no transaction committed before the window as merely prepared (InnoDB\'s log was flushed while commits were held)', () => {
    console.log(`prepared transactions at recovery: ${JSON.stringify(prepared)}`);
    // Without that flush, every backup here froze the redo log just after commits InnoDB had not yet
    // written there (1 to 8 per restore); a commit waiting at BLOCK_COMMIT has not prepared yet.
    expect(Object.keys(prepared).length).toBeGreaterThan(0);
    for (const [what, n] of Object.entries(prepared)) expect({ what, n }).toEqual({ what, n: 0 });
  });
});
