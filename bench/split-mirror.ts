/**
 * What a backup costs the primary's writers: a writer commits one row per transaction on a MariaDB
 * primary, as fast as it can, while ebr backs up (a) the primary itself with the copy provider — its
 * window holds every commit while the files are copied — and (b) a replica of it, split off
 * (snapshot.provider: replica, freeze: copy). Prints, per method and run, the writer's worst gap
 * between two commits, the backup's window, and for the split the split time, the binlog written
 * meanwhile and the catch-up; medians at the end.
 *
 *   npm run build && node dist/bench/split-mirror.js [--mb 200] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/env.js';
import { replicaPair } from '../test/mariadb/replication.js';
import type { TestServer } from '../test/mariadb/server.js';
import { startWriter } from '../test/mariadb/workload.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const mb = Number(opt('mb', '200'));
const runs = Number(opt('runs', '3'));
if (!(mb > 0) || !Number.isInteger(runs) || runs < 1) throw new Error('--mb must be positive and --runs a positive integer');
const ebrMain = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function ebr(config: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [ebrMain, '--config', config, '--json', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b) => (out += b));
    c.stderr.on('data', (b) => (err += b));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`ebr ${argv.join(' ')} exited ${code}: ${err}`))));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const t = tempDir('ebr-bench-split-');
  let primary: TestServer | undefined;
  let replica: TestServer | undefined;
  try {
    const rows = async (s: TestServer) => Number((await s.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.bulk'))[0]!.n);
    ({ primary, replica } = await replicaPair(
      async (p) => {
        await p.query('CREATE DATABASE shop');
        await p.query('CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
        await p.query('CREATE TABLE shop.bulk (id INT AUTO_INCREMENT PRIMARY KEY, pad LONGBLOB) ENGINE=InnoDB');
        process.stderr.write(`loading ${mb} MB …\n`);
        // 1 MiB per row (64 hex digits × 16384), made by the server.
        for (let i = 0; i < mb; i++) await p.query('INSERT INTO shop.bulk (pad) VALUES (REPEAT(SHA2(RAND(), 256), 16384))');
      },
      async (r) => (await rows(r)) === mb,
      600_000,
    ));
    const p = primary;
    const r = replica;

    const config = (name: string, snapshot: string) => {
      const file = path.join(t.dir, `${name}.yaml`);
      writeFileSync(
        file,
        [
          `catalog: ${path.join(t.dir, 'catalog.db')}`,
          'instances:',
          '  mdb:',
          '    adapter: mariadb',
          `    mariadb: { socket: ${p.socket}, user: root, scratchDir: ${path.join(t.dir, 'scratch')} }`,
          `    snapshot: ${snapshot}`,
          `    target: { type: dir, path: ${path.join(t.dir, 'backups')} }`,
          '    maxBlockMs: 600000',
          '',
        ].join('\n'),
      );
      return file;
    };
    const methods = {
      'copy on the primary': config('primary', `{ provider: copy, staging: ${path.join(t.dir, 'staging')} }`),
      'split replica (freeze: copy)': config('replica', `{ provider: replica, replica: { socket: ${r.socket} }, freeze: copy, staging: ${path.join(t.dir, 'staging')}, maxLagMs: 600000 }`),
    };
    const results: Record<string, Array<{ gap: number; window: number; split?: number; resync?: number; backlog?: number }>> = {};
    for (let run = 1; run <= runs; run++) {
      for (const [method, file] of Object.entries(methods)) {
        const writer = await startWriter(p, 'shop.ticks');
        try {
          await writer.waitForCommits(50);
          writer.resetGap();
          const out = JSON.parse(await ebr(file, ['backup'])) as { backupId: string; blockWindowMs: number; meta: { details?: { mirror?: { splitMs: number; resyncMs: number; backlogBytes: number } } } };
          const m = out.meta.details?.mirror;
          const row = { gap: writer.worstGapMs(), window: out.blockWindowMs, ...(m ? { split: m.splitMs, resync: m.resyncMs, backlog: m.backlogBytes } : {}) };
          (results[method] ??= []).push(row);
          process.stdout.write(`run ${run} ${method}: worst commit gap ${row.gap.toFixed(1)} ms, window ${row.window.toFixed(0)} ms${m ? `, split ${m.splitMs} ms, ${m.backlogBytes} bytes of binlog meanwhile, caught up in ${m.resyncMs} ms` : ''}\n`);
        } finally {
          await writer.stop();
        }
        rmSync(path.join(t.dir, 'backups'), { recursive: true, force: true });
      }
    }
    process.stdout.write(`\nmedians of ${runs} (${mb} MB, 2 shared cores):\n`);
    for (const [method, rs] of Object.entries(results)) {
      const split = rs.filter((r) => r.split !== undefined);
      process.stdout.write(
        `  ${method.padEnd(30)} worst commit gap ${median(rs.map((r) => r.gap)).toFixed(1)} ms, window ${median(rs.map((r) => r.window)).toFixed(0)} ms${split.length ? `, split ${median(split.map((r) => r.split!))} ms, catch-up ${median(split.map((r) => r.resync!))} ms` : ''}\n`,
      );
    }
  } finally {
    await replica?.cleanup();
    await primary?.cleanup();
    t.cleanup();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
