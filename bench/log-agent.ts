/**
 * Benchmark (not a test): archive_command's rate, old path against new, and pgbench's WAL rate.
 *
 *   npx tsc -p . && node dist/bench/log-agent.js [--segments 20] [--seconds 20]
 *
 * Old: `ebr wal push` (a whole CLI per segment), one after another as the archiver runs it. New: the
 * spooling push (agent-push.js) one after another, and the time until the agent has stored and read
 * back every one (end to end). Then pgbench -c 4 for --seconds on a fresh cluster: WAL segments per
 * second it generates. Prints whether archiving outpaces WAL generation.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCluster, postgresTempDir } from '../test/postgres/cluster.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const segments = Number(opt('segments', '20'));
const seconds = Number(opt('seconds', '20'));
// Run from dist/bench: the built CLI and push entry beside it.
const built = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(built, 'src/cli/main.js');
const push = path.join(built, 'src/logs/agent-push.js');
const tmp = postgresTempDir('ebr-bench-agent-');
try {
  const dir = tmp.dir;
  const config = path.join(dir, 'ebr.yaml');
  const spool = path.join(dir, 'spool');
  writeFileSync(config, [`catalog: ${dir}/catalog.db`, 'instances:', '  pg:', '    adapter: postgres', '    postgres: { host: /nowhere, port: 5432 }', `    target: { type: dir, path: ${dir}/backups }`, `    logAgent: { spool: ${spool}, idleExitMs: 60000, pollMs: 100 }`, ''].join('\n'));
  mkdirSync(path.join(dir, 'wal'));
  const name = (run: number, i: number) => `0000000${run}${String(i + 1).padStart(16, '0')}`;
  for (const run of [1, 2]) for (let i = 0; i < segments; i++) writeFileSync(path.join(dir, 'wal', name(run, i)), randomBytes(16 << 20));

  let t0 = performance.now();
  for (let i = 0; i < segments; i++) execFileSync(process.execPath, [main, '--config', config, 'wal', 'push', '--instance', 'pg', path.join(dir, 'wal', name(1, i))]);
  const oldRate = segments / ((performance.now() - t0) / 1000);

  t0 = performance.now();
  for (let i = 0; i < segments; i++) execFileSync(process.execPath, [push, '--config', config, '--spool', spool, 'wal', 'push', '--instance', 'pg', path.join(dir, 'wal', name(2, i))]);
  const accept = segments / ((performance.now() - t0) / 1000);
  const stored = () => (existsSync(path.join(spool, 'done')) ? readdirSync(path.join(spool, 'done')).filter((f) => f.startsWith('00000002')).length : 0);
  while (stored() < segments) await new Promise((r) => setTimeout(r, 50));
  const endToEnd = segments / ((performance.now() - t0) / 1000);
  try {
    execFileSync('pkill', ['-F', path.join(spool, 'agent.pid')]);
  } catch {
    // already gone
  }

  const cluster = await initCluster(dir, 'pgdata');
  cluster.conf({ fsync: 'on', synchronous_commit: 'on', max_wal_size: "'1GB'" });
  await cluster.mustStart();
  try {
    await cluster.pgbench(['-i', '-s', '10', 'postgres']);
    const [a] = await cluster.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l');
    const b0 = performance.now();
    await cluster.pgbench(['-c', '4', '-T', String(seconds), 'postgres'], (seconds + 60) * 1000);
    const el = (performance.now() - b0) / 1000;
    const [d] = await cluster.query<{ n: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::text AS n', [a!.l]);
    const walRate = Number(d!.n) / (16 << 20) / el;
    console.log(`old path (ebr wal push per segment): ${oldRate.toFixed(2)} segments/s`);
    console.log(`new path (spooling push): ${accept.toFixed(2)} segments/s accepted, ${endToEnd.toFixed(2)} segments/s stored and read back`);
    console.log(`pgbench -c 4 for ${seconds} s: ${walRate.toFixed(2)} WAL segments/s`);
    console.log(`goal "archive faster than pgbench generates WAL": ${Math.min(accept, endToEnd) > walRate ? 'met' : 'NOT met'} (old path: ${oldRate > walRate ? 'met' : 'not met'})`);
  } finally {
    await cluster.stop('immediate');
  }
} finally {
  tmp.cleanup();
}
