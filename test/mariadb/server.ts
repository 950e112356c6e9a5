/**
 * Throwaway MariaDB servers for the tests: a data directory made by mariadb-install-db in a temp dir,
 * started on a free port and a socket in that dir, binlog on, run as root with --user=root. A missing
 * binary fails the test with the Debian package to install.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { freePort, tempDir, waitFor } from '../helpers/env.js';

export const serverBin = '/usr/sbin/mariadbd';

export function requireMariadb(): void {
  for (const bin of [serverBin, '/usr/bin/mariadb-install-db', '/usr/bin/mariadb-binlog', '/usr/bin/mariadb']) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: install the Debian packages mariadb-server and mariadb-client (apt-get install -y mariadb-server mariadb-client)`);
  }
}

export interface TestServer {
  dir: string;
  datadir: string;
  socket: string;
  port: number;
  errorLog: string;
  /** A new connection (the caller ends it). */
  connect(): Promise<mysql.Connection>;
  /** One statement on a short-lived connection. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  start(): Promise<void>;
  /** Clean shutdown. */
  stop(): Promise<void>;
  running(): boolean;
  cleanup(): Promise<void>;
}

export interface ServerOptions {
  /** Use this existing data directory (a restored one) instead of installing a new one. */
  datadir?: string;
  args?: string[];
  binlog?: boolean;
}

export async function createServer(o: ServerOptions = {}): Promise<TestServer> {
  requireMariadb();
  const { dir, cleanup } = tempDir('ebr-mdb-');
  const datadir = o.datadir ?? path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const errorLog = path.join(dir, 'error.log');
  const port = await freePort();
  if (!o.datadir) {
    execFileSync('/usr/bin/mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-log-file-size=16M'], { stdio: 'pipe' });
  }
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const server: TestServer = {
    dir,
    datadir,
    socket,
    port,
    errorLog,
    connect: () => mysql.createConnection({ socketPath: socket, user: 'root', supportBigNumbers: true, bigNumberStrings: false, dateStrings: true }),
    async query<T>(sql: string, params?: unknown[]) {
      const c = await server.connect();
      try {
        const [rows] = await c.query(sql, params);
        return (Array.isArray(rows) ? rows : []) as T[];
      } finally {
        await c.end();
      }
    },
    async start() {
      const args = [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        '--user=root',
        `--pid-file=${path.join(dir, 'mysqld.pid')}`,
        `--log-error=${errorLog}`,
        '--innodb-buffer-pool-size=64M',
        '--innodb-log-file-size=16M',
        '--max-connections=50',
        ...(o.binlog === false ? [] : ['--log-bin=binlog', '--server-id=1', '--binlog-format=ROW']),
        ...(o.args ?? []),
      ];
      const c = spawn(serverBin, args, { stdio: 'ignore' });
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      let gone = false;
      void exited.then(() => (gone = true));
      await waitFor(
        `MariaDB on ${socket}`,
        async () => {
          if (gone) throw new Error(`mariadbd exited during start-up:\n${tail(errorLog)}`);
          try {
            const conn = await mysql.createConnection({ socketPath: socket, user: 'root', connectTimeout: 1000 });
            await conn.end();
            return true;
          } catch {
            return undefined;
          }
        },
        60_000,
        100,
      );
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // mariadbd shuts down cleanly on SIGTERM
      const timer = setTimeout(() => child?.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
    },
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    async cleanup() {
      await server.stop();
      cleanup();
    },
  };
  await server.start();
  return server;
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Server clock time as NOW(6) prints it. */
export async function serverNow(s: TestServer): Promise<string> {
  const [r] = await s.query<{ t: string }>('SELECT NOW(6) AS t');
  return r!.t;
}
