/**
 * A throwaway server started by restore on restored files: it runs InnoDB crash recovery, takes the
 * binlog replay of a point-in-time restore, or serves FLUSH TABLES … FOR EXPORT for a partial restore,
 * and is shut down cleanly. It listens on a socket in a private scratch directory only (no TCP), with
 * grant tables skipped so that restored passwords do not matter, and never starts replication or events.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResultPromise } from 'execa';
import { loadExeca } from '../../src/util/execa.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { openSql, type Sql } from './mariadb-connection.js';

export interface TempServerOptions {
  program: string;
  datadir: string;
  /** Private directory for the socket, pid file and error log. */
  scratch: string;
  /** OS user to run as when ebr runs as root (the owner of the restored files). */
  runAs?: string;
  /** Server options beyond the ones every temporary server gets. */
  options: string[];
  instance: string;
  startTimeoutMs?: number;
  /** Called with the server's pid as soon as it is spawned (the restore journals it, so a dead ebr's server is ended). */
  onSpawn?: (pid: number) => Promise<void>;
}

export interface TempServer {
  socket: string;
  errorLog: string;
  /** A new connection to it (grant tables are skipped: any user name works). */
  connect(signal?: AbortSignal): Promise<Sql>;
  /** SHUTDOWN, then waits for the process to exit; throws if it did not shut down cleanly. */
  stop(): Promise<void>;
  /** Ends the process without waiting for a clean shutdown (after a failure). */
  kill(): Promise<void>;
}

export async function startTempServer(o: TempServerOptions, signal: AbortSignal): Promise<TempServer> {
  const socket = `${o.scratch}/server.sock`;
  const errorLog = `${o.scratch}/server.err`;
  const args = [
    '--no-defaults',
    `--datadir=${o.datadir}`,
    `--socket=${socket}`,
    `--pid-file=${o.scratch}/server.pid`,
    `--log-error=${errorLog}`,
    '--skip-networking',
    '--skip-grant-tables',
    '--skip-slave-start',
    '--event-scheduler=OFF',
    ...(o.runAs ? [`--user=${o.runAs}`] : []),
    ...o.options,
  ];
  const execa = await loadExeca();
  const child: ResultPromise = execa(o.program, args, { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', cleanup: true, forceKillAfterDelay: 60_000 });
  if (child.pid !== undefined) await o.onSpawn?.(child.pid);
  let exited = false;
  const done = child.then((r) => {
    exited = true;
    return r;
  });
  const ctx = { instance: o.instance, phase: 'restore', path: o.datadir };
  const failure = async (what: string, cause?: unknown) =>
    new EbrError('restore', `${what}; the last lines of its error log:\n${await tail(errorLog)}`, {
      hint: 'the restored files did not start as a server: check the options in mariadb.tempServerOptions (encryption keys, plugins) and that the server version matches the backup',
      context: { ...ctx, errorLog },
      cause,
    });

  const deadline = Date.now() + (o.startTimeoutMs ?? 30 * 60_000);
  for (;;) {
    if (exited) throw await failure(`the temporary server on ${o.datadir} exited during start-up (exit code ${(await done).exitCode})`);
    if (signal.aborted) {
      child.kill('SIGKILL');
      await done;
      throwIfAborted(signal, ctx);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await done;
      throw await failure(`the temporary server on ${o.datadir} did not accept connections within ${Math.round((o.startTimeoutMs ?? 1_800_000) / 1000)} s`);
    }
    const sql = await openSql({ socket, user: 'root', connectTimeoutMs: 2000 }, ctx).catch(() => undefined);
    if (sql) {
      await sql.end();
      break;
    }
    await sleep(200);
  }

  const kill = async () => {
    if (!exited) child.kill('SIGKILL');
    await done;
  };
  return {
    socket,
    errorLog,
    connect: (sig) => openSql({ socket, user: 'root' }, ctx, sig),
    async stop() {
      if (exited) throw await failure('the temporary server stopped by itself');
      try {
        const sql = await openSql({ socket, user: 'root' }, ctx);
        await sql.query('SHUTDOWN').catch(() => undefined); // the server may close the connection before it answers
        await sql.end();
      } catch {
        child.kill('SIGTERM'); // a clean shutdown as well
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
      const r = await done;
      clearTimeout(timer);
      const log = await tail(errorLog, 50);
      if (r.exitCode !== 0 || !/Shutdown complete/.test(log)) throw await failure(`the temporary server on ${o.datadir} did not shut down cleanly (exit code ${r.exitCode}, signal ${r.signal ?? 'none'})`);
    },
    kill,
  };
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no error log)';
  }
}
