/**
 * Retention and the WAL archive against a real cluster archiving through `ebr wal push`: retention runs
 * after `ebr backup` and purges the segments no retained backup needs; afterwards the oldest retained
 * backup still restores to a time after its end (across where the purge cut) and the newest restores;
 * --dry-run changes nothing; a pinned backup keeps its WAL; `ebr verify` names a segment removed by hand.
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, waitFor } from '../helpers/env.js';
import { archivingCluster, postgresTempDir, restoredCluster, type Cluster, type EbrSetup } from '../postgres/cluster.js';

const tmp = postgresTempDir('ebr-retention-pg-');
let cluster: Cluster;
let setup: EbrSetup;
const restored: Cluster[] = [];

const ebr = (args: string[]) => runEbr(['--config', setup.config, ...args], { timeoutMs: 240_000 });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
interface BackupOut {
  backupId: string;
  meta: { details: { startWalFile: string; stopWalFile: string } };
  retention?: { kept: string[]; removed: string[]; logs?: { removed: Array<{ name: string }>; anchor: string } };
}
const walDir = () => path.join(setup.backups, 'pg', 'wal');
/** The segments in the archive (committed: with their digest file). */
const segments = () => readdirSync(walDir()).filter((n) => /^[0-9A-F]{24}\.sha256$/.test(n)).map((n) => n.slice(0, 24)).sort();
const setRetention = (rules: string) => {
  const text = readFileSync(setup.config, 'utf8').replace(/\n {4}retention: .*\n/, '\n');
  writeFileSync(setup.config, `${text}    retention: ${rules}\n`);
};

async function switchWal(): Promise<void> {
  const [r] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  await waitFor(`WAL segment ${r!.f} in the log archive`, () => existsSync(path.join(walDir(), `${r!.f}.sha256`)) || undefined, 60_000, 200);
}
async function mark(label: string): Promise<void> {
  await cluster.query('INSERT INTO marks (label) VALUES ($1)', [label]);
}
async function serverTime(): Promise<string> {
  const [r] = await cluster.query<{ t: string }>("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t");
  return r!.t;
}
async function restoreAndStart(args: string[], name: string): Promise<Cluster> {
  const dir = path.join(tmp.dir, name);
  json(await ebr(['--json', 'restore', '--to', dir, ...args]));
  const c = await restoredCluster(dir, tmp.dir);
  restored.push(c);
  await c.mustStart();
  await c.waitPromoted();
  return c;
}
const labels = async (c: Cluster) => (await c.query<{ label: string }>('SELECT label FROM marks ORDER BY id')).map((r) => r.label);

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  await cluster.query('CREATE TABLE marks (id serial PRIMARY KEY, label text)');
});

afterAll(async () => {
  for (const c of restored) await c.stop('immediate').catch(() => undefined);
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

describe('retention and the WAL archive', () => {
  const b: BackupOut[] = [];
  let afterB2 = '';

  it('ebr backup applies retention and purges the WAL no retained backup needs, keeping everything from the oldest retained start', async () => {
    setRetention('{ full: 2 }');
    await mark('before b1');
    await switchWal();
    b.push(json<BackupOut>(await ebr(['--json', 'backup'])));
    await mark('after b1');
    await switchWal();
    b.push(json<BackupOut>(await ebr(['--json', 'backup'])));
    expect(b[1]!.retention!.removed).toEqual([]);
    await mark('after b2');
    await new Promise((r) => setTimeout(r, 1100));
    afterB2 = await serverTime();
    await new Promise((r) => setTimeout(r, 1100));
    await mark('later');
    await switchWal();
    const before = segments();
    expect(before[0]! < b[1]!.meta.details.startWalFile).toBe(true);

    b.push(json<BackupOut>(await ebr(['--json', 'backup'])));
    const r = b[2]!.retention!;
    expect(r.removed).toEqual([b[0]!.backupId]);
    expect(r.kept.sort()).toEqual([b[1]!.backupId, b[2]!.backupId].sort());
    expect(r.logs!.anchor).toBe(b[1]!.backupId);
    const after = segments();
    const start = b[1]!.meta.details.startWalFile;
    // Exactly the segments before the oldest retained backup's start went; its own and every later one stayed.
    expect(r.logs!.removed.map((x) => x.name).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort()).toEqual(before.filter((s) => s < start));
    expect(after.every((s) => s >= start)).toBe(true);
    expect(after).toContain(start);
    expect(before.filter((s) => s >= start).every((s) => after.includes(s))).toBe(true);
    // The timeline history and the .backup files of the retained backups stay; the removed backup's goes.
    const files = readdirSync(walDir());
    expect(files.filter((f) => f.startsWith(start) && f.endsWith('.backup')).length).toBe(1);
    expect(files.some((f) => f.startsWith(b[0]!.meta.details.startWalFile) && f.endsWith('.backup'))).toBe(false);
    // The text output of `ebr backup` says what retention did.
    expect(json<Array<{ id: string; status: string }>>(await ebr(['--json', 'list'])).find((x) => x.id === b[0]!.backupId)!.status).toBe('removed');
  });

  it('after the purge the oldest retained backup restores to a time after its end, and the newest restores', async () => {
    await switchWal();
    const pitr = await restoreAndStart(['--backup', b[1]!.backupId, '--until', afterB2], 'pitr-b2');
    expect(await labels(pitr)).toEqual(['before b1', 'after b1', 'after b2']);
    await pitr.stop();
    const latest = await restoreAndStart([], 'latest-b3');
    expect(await labels(latest)).toEqual(['before b1', 'after b1', 'after b2', 'later']);
    await latest.stop();
  });

  it('--dry-run says what would go and why and changes nothing; a pinned backup keeps its WAL', async () => {
    setRetention('{ full: 1 }');
    const files = readdirSync(walDir()).sort();
    const dry = json<{ dryRun: boolean; removed: string[]; decisions: Array<{ id: string; keep: boolean; why: string[] }>; logs: { removed: Array<{ name: string; why: string }> } }>(await ebr(['--json', 'retention', '--dry-run']));
    expect(dry.dryRun).toBe(true);
    expect(dry.removed).toEqual([b[1]!.backupId]);
    expect(dry.decisions.find((d) => d.id === b[1]!.backupId)!.why[0]).toMatch(/no rule keeps it \(full 1\)/);
    expect(dry.logs.removed.map((x) => x.name)).toContain(b[1]!.meta.details.startWalFile);
    expect(dry.logs.removed.every((x) => x.name < b[2]!.meta.details.startWalFile)).toBe(true);
    const text = await ebr(['retention', '--dry-run']);
    expect(text.stdout).toMatch(new RegExp(`${b[1]!.backupId}\\s+\\S+\\s+remove\\s+no rule keeps it`));
    const purgeDry = await ebr(['log', 'purge', '--dry-run']);
    expect(purgeDry.code, purgeDry.stderr).toBe(0);
    expect(readdirSync(walDir()).sort()).toEqual(files);
    expect(json<Array<{ id: string; status: string }>>(await ebr(['--json', 'list'])).find((x) => x.id === b[1]!.backupId)!.status).toBe('complete');

    json(await ebr(['--json', 'pin', b[1]!.backupId, '--note', 'audit']));
    const applied = json<{ removed: string[]; kept: string[]; logs: { removed: unknown[] } }>(await ebr(['--json', 'retention']));
    expect(applied.removed).toEqual([]);
    expect(applied.kept).toContain(b[1]!.backupId);
    expect(applied.logs.removed).toEqual([]);
    expect(readdirSync(walDir()).sort()).toEqual(files);
    // Unpinned, the same rules let it and its WAL go.
    json(await ebr(['--json', 'unpin', b[1]!.backupId]));
    const gone = json<{ removed: string[]; logs: { removed: Array<{ name: string }> } }>(await ebr(['--json', 'retention']));
    expect(gone.removed).toEqual([b[1]!.backupId]);
    expect(segments()[0]).toBe(b[2]!.meta.details.startWalFile);
  });

  it('ebr verify checks the WAL chain and names a segment removed by hand', async () => {
    await mark('more');
    await switchWal();
    await mark('more again');
    await switchWal();
    const ok = await ebr(['verify']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/log archive \(wal\): timeline 1 .* no gap/);
    const victim = segments()[1]!;
    rmSync(path.join(walDir(), victim));
    rmSync(path.join(walDir(), `${victim}.sha256`));
    const bad = await ebr(['verify']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`ebr: gap: timeline 1: ${victim} missing after ${segments()[0]}`);
    expect(bad.stderr).toContain(b[2]!.backupId);
    expect(bad.stderr).toMatch(/hint: restores of /);
  });
});
