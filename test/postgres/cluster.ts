/**
 * Throwaway PostgreSQL clusters for tests: initdb (data checksums on) in a temp dir owned by the postgres
 * OS user, a free port, the unix socket in the temp dir, started and stopped with pg_ctl.
 */
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ebrBin, freePort } from '../helpers/env.js';
import { catalogFor } from '../helpers/config-file.js';

/** The newest PostgreSQL server binaries; a clear failure naming the Debian package when there are none. */
export function pgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(a) - Number(b));
  const v = versions.at(-1);
  if (!v) throw new Error('PostgreSQL server binaries (initdb, pg_ctl, pgbench) are missing: install the Debian packages postgresql and postgresql-contrib (bash test/provision.sh does)');
  for (const tool of ['pg_ctl', 'pgbench', 'pg_amcheck', 'postgres']) {
    if (!existsSync(path.join(root, v, 'bin', tool))) throw new Error(`${tool} is missing from ${root}/${v}/bin: install the Debian packages postgresql and postgresql-contrib`);
  }
  return path.join(root, v, 'bin');
}

export function postgresIds(): { uid: number; gid: number } {
  try {
    return { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
  } catch {
    throw new Error('there is no postgres OS user: install the Debian package postgresql, which creates it');
  }
}

export interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command as the postgres OS user (tests run as root); never throws on a non-zero exit. */
export function asPostgres(cmd: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunOutput> {
  return new Promise((resolve) => {
    execFile('runuser', ['-u', 'postgres', '--', cmd, ...args], { cwd: options.cwd ?? '/', timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0, stdout, stderr });
    });
  });
}

async function must(cmd: string, args: string[], options?: { cwd?: string; timeoutMs?: number }): Promise<string> {
  const r = await asPostgres(cmd, args, options);
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** A directory the postgres user owns, for data directories, sockets, tablespaces and the log archive. */
export function postgresTempDir(prefix = 'ebr-pg-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function mkdirForPostgres(dir: string): string {
  const { uid, gid } = postgresIds();
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uid, gid);
  return dir;
}

export class Cluster {
  running = false;
  constructor(
    readonly data: string,
    readonly port: number,
    /** Where the unix socket goes (the host to connect to). */
    readonly socketDir: string,
    readonly bin = pgBin(),
  ) {}

  /** pg_ctl start with this cluster's port and socket, whatever the (restored) postgresql.conf says. */
  async start(options: { wait?: boolean; timeoutS?: number } = {}): Promise<RunOutput> {
    const r = await asPostgres(path.join(this.bin, 'pg_ctl'), [
      '-D', this.data, '-l', `${this.data}.log`, '-o', `-p ${this.port} -k ${this.socketDir} -c listen_addresses=''`,
      ...(options.wait === false ? ['-W'] : ['-w', '-t', String(options.timeoutS ?? 120)]), 'start',
    ]);
    if (r.code === 0) this.running = true;
    return r;
  }

  async mustStart(options?: { timeoutS?: number }): Promise<void> {
    const r = await this.start(options);
    if (r.code !== 0) throw new Error(`pg_ctl start failed: ${r.stderr}${r.stdout}\n--- server log ---\n${this.log()}`);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!existsSync(path.join(this.data, 'postmaster.pid'))) {
      this.running = false;
      return;
    }
    await must(path.join(this.bin, 'pg_ctl'), ['-D', this.data, '-m', mode, '-w', 'stop']);
    this.running = false;
  }

  log(): string {
    try {
      return execFileSync('tail', ['-n', '60', `${this.data}.log`], { encoding: 'utf8' });
    } catch {
      return '(no log)';
    }
  }

  conf(settings: Record<string, string>): void {
    appendFileSync(path.join(this.data, 'postgresql.conf'), Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(''));
  }

  async client(database = 'postgres'): Promise<pg.Client> {
    const c = new pg.Client({ host: this.socketDir, port: this.port, user: 'postgres', database });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const c = await this.client(database);
    try {
      return (await c.query<R>(sql, params)).rows;
    } finally {
      await c.end();
    }
  }

  pgbench(args: string[], timeoutMs = 180_000): Promise<RunOutput> {
    return asPostgres(path.join(this.bin, 'pgbench'), ['-h', this.socketDir, '-p', String(this.port), '-U', 'postgres', ...args], { timeoutMs });
  }

  amcheck(args: string[] = ['--all', '--heapallindexed', '--install-missing']): Promise<RunOutput> {
    return asPostgres(path.join(this.bin, 'pg_amcheck'), ['-h', this.socketDir, '-p', String(this.port), '-U', 'postgres', ...args]);
  }

  /** Waits until recovery has ended and the server accepts writes. */
  async waitPromoted(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const [r] = await this.query<{ rec: boolean }>('SELECT pg_is_in_recovery() AS rec');
        if (r && !r.rec) return;
      } catch {
        // still starting
      }
      if (Date.now() > deadline) throw new Error(`the restored cluster did not leave recovery within ${timeoutMs} ms\n--- server log ---\n${this.log()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** initdb a new cluster in `dir/data` with checksums, on a free port, its socket in `dir`. */
export async function initCluster(dir: string, name = 'data'): Promise<Cluster> {
  const bin = pgBin();
  const data = path.join(dir, name);
  await must(path.join(bin, 'initdb'), ['-D', data, '--data-checksums', '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const cluster = new Cluster(data, await freePort(), dir, bin);
  cluster.conf({
    port: String(cluster.port),
    unix_socket_directories: `'${dir}'`,
    listen_addresses: "''",
    wal_level: 'replica',
    max_wal_size: "'256MB'",
    shared_buffers: "'64MB'",
    fsync: 'off',
    log_line_prefix: "'%m [%p] '",
  });
  return cluster;
}

export interface EbrSetup {
  config: string;
  backups: string;
  instance: string;
  /** archive_command that pushes into this config's instance. */
  archiveCommand: string;
}

/** An ebr.yaml for one PostgreSQL instance, readable by postgres, with a log archive postgres may write. */
export function writeEbrConfig(dir: string, cluster: Cluster, options: { instance?: string; provider?: string; maxBlockMs?: number; extra?: string; instanceLines?: string[] } = {}): EbrSetup {
  const instance = options.instance ?? 'pg';
  const backups = mkdirForPostgres(path.join(dir, 'backups'));
  mkdirForPostgres(path.join(backups, instance));
  mkdirForPostgres(path.join(backups, instance, 'wal'));
  const config = path.join(dir, 'ebr.yaml');
  writeFileSync(
    config,
    [
      `catalog: ${catalogFor(path.join(dir, 'var', 'catalog.db'))}`,
      'instances:',
      `  ${instance}:`,
      '    adapter: postgres',
      `    postgres: { host: ${cluster.socketDir}, port: ${cluster.port}, user: postgres, database: postgres, archiveWaitMs: 60000${options.extra ? `, ${options.extra}` : ''} }`,
      `    snapshot: { provider: ${options.provider ?? 'copy'}, staging: ${path.join(dir, 'staging')} }`,
      `    target: { type: tar, path: ${backups} }`,
      `    maxBlockMs: ${options.maxBlockMs ?? 60000}`,
      ...(options.instanceLines ?? []).map((l) => `    ${l}`),
      '',
    ].join('\n'),
  );
  const archiveCommand = `${process.execPath} ${ebrBin} --config ${config} wal push --instance ${instance} %p`;
  return { config, backups, instance, archiveCommand };
}

/** A started cluster that archives its WAL into ebr's log archive through `ebr wal push`, with its ebr config. */
export async function archivingCluster(dir: string): Promise<{ cluster: Cluster; setup: EbrSetup }> {
  if (!existsSync(ebrBin)) throw new Error(`${ebrBin} is missing: run \`npx tsc -p .\` before these tests`);
  const cluster = await initCluster(dir);
  const setup = writeEbrConfig(dir, cluster);
  cluster.conf({ archive_mode: 'on', archive_command: `'${setup.archiveCommand}'` });
  await cluster.mustStart();
  return { cluster, setup };
}

/** A cluster object for a restored data directory, on its own port. */
export async function restoredCluster(data: string, socketDir: string): Promise<Cluster> {
  return new Cluster(data, await freePort(), socketDir);
}

/** A restored data directory started and out of recovery; added to `started`, which the suite stops at its end. */
export async function startRestored(data: string, socketDir: string, started: Cluster[]): Promise<Cluster> {
  const c = await restoredCluster(data, socketDir);
  started.push(c);
  await c.mustStart();
  await c.waitPromoted();
  return c;
}
