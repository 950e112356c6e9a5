/**
 * Benchmark (not a test): how long each snapshot provider blocks a live database, at two sizes.
 *
 *   npm run build && node dist/bench/window.js [--sizes 200,1024] [--runs 3]
 *
 * Needs root (loop devices) and btrfs-progs / xfsprogs. For each filesystem (btrfs, XFS with
 * reflink=1) it makes a loop device, SQLite databases of the given sizes (MiB), and runs `ebr backup`
 * with each provider that works there while a writer commits every millisecond. It prints, per provider
 * and size, the medians over the runs of: the window ebr recorded (block → unblock), the writer's
 * longest stall overlapping the window, and its longest stall over the whole backup (checkpoint and
 * streaming included). Archives go to another filesystem. Compare within one run, not across runs.
 * LVM and ZFS are not measured: this kind of machine has no device-mapper or ZFS module.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools } from '../test/snapshot/loopfs.js';
import { makeDatabase, makeLab, measuredBackup, startWriter, writeConfig, type Lab, type Measured } from '../test/snapshot/window-lab.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const sizes = opt('sizes', '200,1024').split(',').map(Number);
const runs = Number(opt('runs', '3'));
const here = path.dirname(fileURLToPath(import.meta.url));
const paths = { ebrBin: path.resolve(here, '../src/cli/main.js'), writerScript: path.resolve(here, '../../test/snapshot/window-writer.mjs') };

const plans: Array<{ fs: 'btrfs' | 'xfs'; providers: string[] }> = [
  { fs: 'btrfs', providers: ['btrfs', 'reflink', 'copy'] },
  { fs: 'xfs', providers: ['reflink', 'copy'] },
];

interface Row {
  fs: string;
  provider: string;
  sizeMiB: number;
  results: Measured[];
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

async function measure(fs: 'btrfs' | 'xfs', providers: string[]): Promise<Row[]> {
  const total = sizes.reduce((a, b) => a + b, 0);
  // Databases, plus ample room for a staged copy of the largest (btrfs allocates space in 1 GiB chunks).
  const lab: Lab = makeLab(total + 2 * Math.max(...sizes) + 1024, fs);
  const rows: Row[] = [];
  try {
    for (const sizeMiB of sizes) {
      process.stderr.write(`${fs}: making a ${sizeMiB} MiB database\n`);
      const db = makeDatabase(lab, `db-${sizeMiB}.db`, sizeMiB);
      writeConfig(lab, Object.fromEntries(providers.map((p) => [p, { db, provider: p }])));
      const writer = await startWriter(paths, db);
      try {
        for (const provider of providers) {
          const results: Measured[] = [];
          for (let i = 0; i < runs; i++) {
            const m = await measuredBackup(paths, lab, provider, writer);
            if (m.code !== 0) throw new Error(`ebr backup (${provider} on ${fs}) failed: ${m.stderr}`);
            results.push(m);
            process.stderr.write(`${fs} ${provider} ${sizeMiB} MiB: window ${ms(m.windowMs ?? NaN)} ms, stall in window ${ms(m.windowStallMs ?? NaN)} ms, worst stall ${ms(m.stallMs)} ms\n`);
          }
          rows.push({ fs, provider, sizeMiB, results });
        }
      } finally {
        await writer.stop();
      }
    }
  } finally {
    lab.teardown();
  }
  return rows;
}

function table(rows: Row[]): string {
  const head = ['fs', 'provider', 'size MiB', 'window ms', 'stall in window ms', 'worst stall in backup ms', 'window steps (median ms)'];
  const body = rows.map((r) => {
    const steps = new Map<string, number[]>();
    for (const m of r.results) for (const [k, v] of Object.entries(m.steps ?? {})) steps.set(k, [...(steps.get(k) ?? []), v]);
    const stepText = [...steps].filter(([k]) => k !== 'snapshot' && !k.startsWith('snapshot.subvolume')).map(([k, v]) => `${k} ${median(v).toFixed(1)}`).join(', ');
    return [r.fs, r.provider, String(r.sizeMiB), ms(median(r.results.map((m) => m.windowMs ?? NaN))), ms(median(r.results.map((m) => m.windowStallMs ?? NaN))), ms(median(r.results.map((m) => m.stallMs))), stepText];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  requireTools('btrfs', 'mkfs.btrfs', 'mkfs.xfs');
  const rows: Row[] = [];
  for (const plan of plans) rows.push(...(await measure(plan.fs, plan.providers)));
  process.stdout.write(`${table(rows)}\n\nmedians of ${runs} runs; lvm and zfs: not measured here (no device-mapper / ZFS module), tested against their commands only\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
