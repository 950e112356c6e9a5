/**
 * The PostgreSQL drill: a temporary postmaster on the restored copy, as the copy's owner, listening on
 * a unix socket in the drill's private directory only (no TCP, trust authentication through an hba
 * file of its own, so restored passwords do not matter), archive_mode off so it never writes into the
 * original's log archive. The restore left recovery.signal and a restore_command that fetches WAL from
 * ebr's log archive, so the server replays every archived segment and ends recovery where the archive
 * ends; then pg_amcheck checks every heap and B-tree index of every database, and the server is shut
 * down. Without pg_amcheck (PostgreSQL before 14, or a package without it) every table is read with a
 * sequential scan instead: that finds pages whose checksum or header is wrong, but no index damage.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chown, readFile, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResultPromise } from 'execa';
import { loadExeca } from '../../src/util/execa.js';
import type { DrillCheck, DrillReport, InstanceContext, RestoredCopy } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { PostgresSettings } from './postgres-config.js';

/** Databases a partial restore wrote as placeholder files: they cannot be read, so they are not checked. */
const alwaysRestored = new Set(['template0', 'template1', 'postgres']);
/** How long recovery may take before the drill gives up: replaying a large archive takes a while. */
const recoveryLimitMs = 6 * 3600_000;

export async function drillPostgres(instance: InstanceContext<PostgresSettings>, copy: RestoredCopy, signal: AbortSignal): Promise<DrillReport> {
  const ctx = { instance: instance.name, backupId: copy.plan.backupId, phase: 'drill', path: copy.dir };
  const bin = binDirFor(copy.dir, ctx);
  const owner = await stat(copy.dir);
  const asRoot = process.getuid?.() === 0;
  if (asRoot && owner.uid === 0) {
    throw new EbrError('restore', `the restored copy ${copy.dir} is owned by root, and PostgreSQL refuses to run as root`, {
      hint: 'back up and drill the cluster as its own OS user (postgres), or run ebr as root so the restore keeps the files\' owner',
      context: ctx,
    });
  }
  const hba = path.join(copy.scratch, 'pg_hba.conf');
  const conf = path.join(copy.scratch, 'postgresql.conf');
  const log = path.join(copy.scratch, 'server.log');
  await writeFile(hba, 'local all all trust\n', { mode: 0o600 });
  // Debian keeps postgresql.conf in /etc/postgresql, not in the data directory: the copy's own one is used when it has one.
  const ownConf = path.join(copy.dir, 'postgresql.conf');
  await writeFile(conf, existsSync(ownConf) ? `include '${ownConf.replace(/'/g, "''")}'\n` : '', { mode: 0o600 });
  if (asRoot) for (const f of [hba, conf]) await chown(f, owner.uid, owner.gid);
  const port = await freePort();
  const args = [
    `--config-file=${conf}`,
    '-c', `data_directory=${copy.dir}`,
    '-c', `hba_file=${hba}`,
    '-c', `ident_file=${hba}`,
    '-p', String(port),
    '-c', `unix_socket_directories=${copy.scratch}`,
    '-c', 'listen_addresses=',
    '-c', 'archive_mode=off',
    '-c', 'ssl=off',
    '-c', 'logging_collector=off',
    '-c', 'log_destination=stderr',
    '-c', 'external_pid_file=',
    // max_connections, max_worker_processes and the like stay as restored: recovery refuses values below the primary's.
  ];
  const started = performance.now();
  const execa = await loadExeca();
  const child: ResultPromise = execa(path.join(bin, 'postgres'), args, {
    reject: false,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: { file: log },
    cleanup: true,
    ...(asRoot ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  if (child.pid !== undefined) await copy.onSpawn?.(child.pid);
  let exited = false;
  const done = child.then((r) => {
    exited = true;
    return r;
  });
  const failure = async (what: string) =>
    new EbrError('restore', `${what}; the last lines of its log:\n${await tail(log)}`, {
      hint: 'the restored copy did not start or recover: a WAL segment missing from the archive, or settings the copy cannot use (shared_preload_libraries, paths) — the log above says which',
      context: { ...ctx, log },
    });
  const connect = async (database: string, user: string) => {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ host: copy.scratch, port, user, database, connectionTimeoutMillis: 5000 });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const user = instance.settings.user;
  const amcheck = path.join(bin, 'pg_amcheck');
  const checks: DrillCheck[] = [];
  let recoverMs = 0;
  try {
    // Recovery has ended when the server leaves recovery: it promoted on a new timeline after the last archived segment.
    const deadline = Date.now() + recoveryLimitMs;
    for (;;) {
      if (exited) throw await failure(`the temporary server on ${copy.dir} exited during recovery (exit code ${(await done).exitCode})`);
      throwIfAborted(signal, ctx);
      if (Date.now() > deadline) throw await failure(`the temporary server on ${copy.dir} was still in recovery after ${recoveryLimitMs / 3600_000} h`);
      const inRecovery = await connect(instance.settings.database, user)
        .then(async (c) => {
          try {
            return (await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r;
          } finally {
            await c.end().catch(() => undefined);
          }
        })
        .catch(() => undefined);
      if (inRecovery === false) break;
      await sleep(500);
    }
    recoverMs = performance.now() - started;
    checks.push({ name: 'recovery', ok: true, detail: 'the copy started, replayed the archived WAL and opened for writes' });
    const admin = await connect(instance.settings.database, user);
    let superuser: string;
    let databases: string[];
    try {
      // The bootstrap superuser: pg_amcheck needs one; trust authentication lets the drill be it.
      superuser = String((await admin.query<{ n: string }>('SELECT rolname AS n FROM pg_roles WHERE oid = 10')).rows[0]?.n ?? user);
      const skip = placeholders(copy);
      databases = (await admin.query<{ d: string }>('SELECT datname AS d FROM pg_database WHERE datallowconn ORDER BY datname')).rows.map((r) => r.d).filter((d) => !skip.has(d));
    } finally {
      await admin.end().catch(() => undefined);
    }
    if (existsSync(amcheck)) checks.push(await runAmcheck(amcheck, copy.scratch, port, superuser, databases, signal));
    else for (const d of databases) checks.push(await scanTables(await connect(d, superuser), d));
  } catch (err) {
    await stopServer(child, done, exited);
    throw err;
  }
  const stopped = await stopServer(child, done, exited);
  checks.push({ name: 'shutdown', ok: stopped.clean, detail: stopped.clean ? 'the temporary server shut down cleanly' : `the temporary server did not shut down cleanly (exit code ${stopped.exitCode}):\n${await tail(log)}` });
  const logApplied = walReplayed(await readFile(log, 'utf8').catch(() => ''));
  return {
    checks,
    recoverMs,
    logApplied,
    notes: [`temporary postmaster on ${copy.dir} (port ${port}, socket only), ${logApplied.count} WAL segment(s) replayed from the archive${existsSync(amcheck) ? '' : '; pg_amcheck is not installed, so every table was read with a sequential scan instead (indexes unchecked): install postgresql-contrib or PostgreSQL 14+ for pg_amcheck'}`],
  };
}

async function runAmcheck(program: string, socket: string, port: number, user: string, databases: string[], signal: AbortSignal): Promise<DrillCheck> {
  const args = ['-h', socket, '-p', String(port), '-U', user, '--heapallindexed', '--install-missing', ...databases.flatMap((d) => ['-d', d])];
  const execa = await loadExeca();
  const r = await execa(program, args, { reject: false, cancelSignal: signal, all: true, stdin: 'ignore' });
  const out = String(r.all ?? '').trim();
  // Exit 0: nothing found; 2: corruption found; anything else: it could not check.
  return {
    name: `pg_amcheck --heapallindexed (${databases.join(', ')})`,
    ok: r.exitCode === 0,
    detail: r.exitCode === 0 ? 'no corruption found in any heap or B-tree index' : `${r.exitCode === 2 ? 'corruption found' : `pg_amcheck exited ${r.exitCode}`}:\n${out.split('\n').slice(0, 20).join('\n')}`,
  };
}

/** The fallback: every table and materialized view read with a sequential scan (checksums verified on every page read). */
async function scanTables(c: import('pg').Client, database: string): Promise<DrillCheck> {
  try {
    await c.query('SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off');
    const rels = (await c.query<{ q: string }>("SELECT format('%I.%I', n.nspname, c.relname) AS q FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm', 't') AND c.relpersistence = 'p'")).rows;
    const bad: string[] = [];
    for (const r of rels) await c.query(`SELECT count(*) FROM ONLY ${r.q}`).catch((err: Error) => bad.push(`${r.q}: ${err.message}`));
    return { name: `sequential scan of ${rels.length} tables in ${database}`, ok: bad.length === 0, detail: bad.length === 0 ? 'every page read' : bad.slice(0, 10).join('\n') };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function stopServer(child: ResultPromise, done: Promise<{ exitCode?: number | undefined }>, exited: boolean): Promise<{ clean: boolean; exitCode?: number | undefined }> {
  if (exited) return { clean: false, exitCode: (await done).exitCode };
  child.kill('SIGINT'); // fast shutdown: ends sessions, writes a shutdown checkpoint
  const timer = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
  const r = await done;
  clearTimeout(timer);
  return { clean: r.exitCode === 0, exitCode: r.exitCode };
}

/** What the server log says it replayed: segments restored from the archive, and where redo ended. */
export function walReplayed(log: string): NonNullable<DrillReport['logApplied']> {
  const segments = [...log.matchAll(/restored log file "([0-9A-F]{24})" from archive/g)].map((m) => m[1]!);
  const redoDone = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(log)?.[1];
  const lastTx = /last completed transaction was at log time ([^\n]+)/.exec(log)?.[1]?.trim();
  return {
    count: segments.length,
    ...(segments.length ? { first: segments[0], last: segments.at(-1) } : {}),
    ...(redoDone || lastTx ? { endedAt: [redoDone && `LSN ${redoDone}`, lastTx && `last transaction ${lastTx}`].filter(Boolean).join(', ') } : {}),
  };
}

function placeholders(copy: RestoredCopy): Set<string> {
  if (copy.plan.mode !== 'partial') return new Set();
  return new Set(
    copy.plan.spaces
      .filter((s) => s.details?.role === 'database' && !copy.plan.requested.includes(s.name))
      .map((s) => String(s.details?.datname ?? s.name))
      .filter((d) => !alwaysRestored.has(d)),
  );
}

/** The server binaries of the copy's major version (Debian: /usr/lib/postgresql/<major>/bin), else the PATH. */
function binDirFor(dataDir: string, ctx: Record<string, unknown>): string {
  const major = readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim();
  const dirs = [`/usr/lib/postgresql/${major}/bin`, `/usr/pgsql-${major}/bin`, ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean)];
  const found = dirs.find((d) => existsSync(path.join(d, 'postgres')));
  if (!found) {
    throw new EbrError('restore', `no PostgreSQL ${major} server program (postgres) in ${dirs.slice(0, 2).join(', ')} or the PATH; a drill starts the copy with the server of the backup's major version`, {
      hint: `install it (Debian: apt-get install postgresql-${major} postgresql-contrib)`,
      context: ctx,
    });
  }
  return found;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
