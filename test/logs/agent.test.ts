/**
 * `ebr log agent` against a real PostgreSQL: archive_command spools through agent-push.js, the agent
 * (started by the push when none runs) stores the segments; a kill -9 of the agent loses nothing;
 * identical re-pushes succeed, different bytes fail loudly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, waitFor } from '../helpers/env.js';
import { asPostgres, initCluster, mkdirForPostgres, postgresTempDir, writeEbrConfig, type Cluster, type EbrSetup } from '../postgres/cluster.js';

const tmp = postgresTempDir('ebr-agent-');
const pushEntry = path.join(repoRoot, 'dist/src/logs/agent-push.js');
let cluster: Cluster;
let setup: EbrSetup;
let spool: string;
const wal = () => path.join(setup.backups, setup.instance, 'wal');
const archived = () => (existsSync(wal()) ? readdirSync(wal()).filter((f) => /^[0-9A-F]{24}$/.test(f)) : []);
const agentPid = () => {
  try {
    return Number(readFileSync(path.join(spool, 'agent.pid'), 'utf8'));
  } catch {
    return undefined;
  }
};

beforeAll(async () => {
  cluster = await initCluster(tmp.dir);
  spool = mkdirForPostgres(path.join(tmp.dir, 'spool'));
  setup = writeEbrConfig(tmp.dir, cluster, { instanceLines: [`logAgent: { spool: ${spool}, idleExitMs: 600000, pollMs: 200 }`] });
  const cmd = (await runEbr(['--config', setup.config, 'log', 'agent', '--print-command', '--instance', 'pg'])).stdout.trim();
  expect(cmd).toContain('agent-push.js');
  cluster.conf({ archive_mode: 'on', archive_command: `'${cmd}'` });
  await cluster.mustStart();
}, 120_000);

afterAll(async () => {
  const pid = agentPid();
  if (pid) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

async function switchWal(n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    await cluster.query('CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t SELECT generate_series(1, 1000)');
    const [r] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_current_wal_lsn()) AS f');
    names.push(r!.f);
    await cluster.query('SELECT pg_switch_wal()');
  }
  return names;
}

describe('ebr log agent', () => {
  it('archive_command spools, a self-started agent stores every segment with its digest', async () => {
    const names = await switchWal(4);
    // done/ is written after the read-back, so it is the agent's own word that a segment is stored.
    await waitFor('the segments stored and recorded', () => names.every((n) => archived().includes(n) && existsSync(path.join(spool, 'done', n))) || undefined, 90_000, 200);
    await waitFor('the queue empty', () => (readdirSync(path.join(spool, 'queue')).filter((f) => names.includes(f)).length === 0 ? true : undefined), 30_000, 100);
    expect(agentPid()).toBeGreaterThan(0);
    for (const n of names) {
      const digest = readFileSync(path.join(wal(), `${n}.sha256`), 'utf8').slice(0, 64);
      expect(readFileSync(path.join(spool, 'done', n), 'utf8').trim()).toBe(digest);
    }
  }, 120_000);

  it('kill -9 of the agent loses nothing: what is spooled is stored by the next agent', async () => {
    const pid = agentPid()!;
    process.kill(pid, 'SIGSTOP'); // frozen mid-work: pushes keep spooling, nothing is stored
    const names = await switchWal(3);
    await waitFor('the segments spooled', () => names.every((n) => existsSync(path.join(spool, 'queue', n)) || archived().includes(n)) || undefined, 90_000, 200);
    process.kill(pid, 'SIGKILL');
    await waitFor('the agent gone', () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    // The next push finds no agent and starts one; it takes the stale lock and stores the queue.
    await switchWal(1);
    await waitFor('the spooled segments in the archive', () => names.every((n) => archived().includes(n)) || undefined, 90_000, 200);
    expect(agentPid()).not.toBe(pid);
  }, 180_000);

  it('a re-push of the same bytes succeeds, different bytes fail loudly, with no agent running too', async () => {
    const pid = agentPid();
    if (pid) process.kill(pid, 'SIGTERM');
    await waitFor('the agent stopped', () => (agentPid() === undefined ? true : undefined), 30_000, 100);
    const name = archived().sort()[0]!;
    const copy = path.join(tmp.dir, 'copy', name);
    mkdirSync(path.dirname(copy), { recursive: true });
    writeFileSync(copy, readFileSync(path.join(wal(), name)));
    const push = (file: string) => asPostgres(process.execPath, [pushEntry, '--config', setup.config, '--spool', spool, 'wal', 'push', '--instance', 'pg', file]);
    expect((await push(copy)).code).toBe(0);
    writeFileSync(copy, Buffer.alloc(16 << 20, 7));
    const bad = await push(copy);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/already holds a different/);
    // A new name with no agent: durably spooled, and an agent is started that stores it.
    const fresh = path.join(tmp.dir, 'copy', '0000000100000000000000F0');
    writeFileSync(fresh, Buffer.alloc(16 << 20, 5));
    execFileSync('chown', ['-R', 'postgres', path.dirname(fresh)]);
    expect((await push(fresh)).code).toBe(0);
    await waitFor('the fresh segment archived', () => (archived().includes('0000000100000000000000F0') ? true : undefined), 60_000, 200);
  }, 180_000);
});
