/**
 * Retention and the binlog archive against a real MariaDB server whose binlogs ebr archives (after every
 * backup, and `ebr binlog sync`): `ebr log purge --dry-run` changes nothing, `ebr log purge` and the
 * purge retention runs after `ebr backup` remove exactly the binlogs (with their .range.json and digest
 * files) before the binlog the oldest retained backup starts in; afterwards that backup still restores
 * to a time after its end and the newest restores; a pinned backup keeps its binlogs; `ebr verify`
 * names a binlog removed by hand.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { withRestoredServer, writeConfig, type EbrSetup } from '../mariadb/mariadb-instance.js';
import { createServer, serverNow, type TestServer } from '../mariadb/server.js';

const t = tempDir('ebr-retention-mdb-');
let server: TestServer;
let e: EbrSetup;

interface BackupOut {
  backupId: string;
  meta: { details: { file: string; position: number } };
  retention?: { kept: string[]; removed: string[]; logs?: PurgeOut; logsSkipped?: string; logsError?: string };
}
interface PurgeOut {
  dryRun: boolean;
  anchor: string;
  removed: Array<{ name: string; why: string }>;
  kept: number;
  oldestKept: string[];
  notes: string[];
}

const binlogDir = () => path.join(t.dir, 'backups', 'mdb', 'binlog');
const files = () => readdirSync(binlogDir()).sort();
const numberOf = (name: string) => Number(/^binlog\.(\d+)/.exec(name)![1]);
/** The archived binlogs (committed: with their digest file). */
const binlogs = () => files().filter((f) => /^binlog\.\d+\.sha256$/.test(f)).map((f) => f.slice(0, -'.sha256'.length));
/** Every file the store keeps for one binlog: the log, its range, and the digest of each. */
const filesOf = (name: string) => [name, `${name}.range.json`, `${name}.range.json.sha256`, `${name}.sha256`];
const fileOf = (b: BackupOut) => b.meta.details.file;
const setRetention = (rules: string | undefined) => {
  const text = readFileSync(e.config, 'utf8').replace(/\n {4}retention: .*\n/, '\n');
  writeFileSync(e.config, rules ? `${text}    retention: ${rules}\n` : text);
};
const mark = (label: string) => server.query('INSERT INTO a.marks (label) VALUES (?)', [label]);
const flush = () => server.query('FLUSH BINARY LOGS');
const backup = () => e.ebrJson<BackupOut>(['backup']);
const labels = async (s: TestServer) => (await s.query<{ label: string }>('SELECT label FROM a.marks ORDER BY id')).map((r) => r.label);
const pause = () => new Promise((r) => setTimeout(r, 1100)); // binlog events carry whole seconds

beforeAll(async () => {
  server = await createServer();
  await server.query('CREATE DATABASE a');
  await server.query('CREATE TABLE a.marks (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40) NOT NULL) ENGINE=InnoDB');
  e = writeConfig(t.dir, server);
});

afterAll(async () => {
  await server?.cleanup();
  t.cleanup();
});

describe('retention and the binlog archive', () => {
  const b: BackupOut[] = [];
  let afterB2 = '';

  it('ebr log purge --dry-run changes nothing; ebr log purge removes exactly the binlogs before the oldest backup, with their sidecars', async () => {
    // Binlogs before the first backup, written and rotated.
    await mark('early');
    await flush();
    await mark('before b1');
    await flush();
    b.push(await backup());
    await mark('after b1');
    await flush();
    await mark('after b1 again');
    await flush();
    b.push(await backup());
    await mark('after b2');
    await pause();
    afterB2 = await serverNow(server);
    await pause();
    await mark('later');
    await flush();
    b.push(await backup());
    expect(b.every((x) => !x.retention)).toBe(true); // no rules yet: nothing removed after a backup
    const [n1, n2, n3] = b.map((x) => numberOf(fileOf(x)));
    expect(n1! < n2! && n2! < n3!).toBe(true);

    const before = files();
    const logs = binlogs();
    // Every binlog from the first on is archived, each with its range.
    expect(logs.map(numberOf)).toEqual(Array.from({ length: logs.length }, (_, i) => i + 1));
    expect(logs).toContain(fileOf(b[2]!));
    for (const l of logs) for (const f of filesOf(l)) expect(before).toContain(f);
    const goes = logs.filter((l) => numberOf(l) < n1!);
    expect(goes.length).toBeGreaterThanOrEqual(2);

    const dry = await e.ebrJson<PurgeOut>(['log', 'purge', '--dry-run']);
    expect(dry.dryRun).toBe(true);
    expect(dry.anchor).toBe(b[0]!.backupId);
    expect(dry.removed.map((r) => r.name).sort()).toEqual(goes.flatMap((l) => [l, `${l}.range.json`]).sort());
    expect(dry.removed[0]!.why).toContain(fileOf(b[0]!));
    expect(dry.oldestKept).toEqual([fileOf(b[0]!)]);
    const text = await e.ebr(['log', 'purge', '--dry-run']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`would remove ${goes[0]}: before ${fileOf(b[0]!)}`);
    expect(files()).toEqual(before);

    const purged = await e.ebrJson<PurgeOut>(['log', 'purge']);
    expect(purged.dryRun).toBe(false);
    expect(purged.removed.map((r) => r.name).sort()).toEqual(dry.removed.map((r) => r.name).sort());
    // Exactly the files of the binlogs before b1's went; every file of b1's binlog and later ones stayed.
    expect(files()).toEqual(before.filter((f) => numberOf(f) >= n1!));
    expect(before.filter((f) => numberOf(f) < n1!).sort()).toEqual(goes.flatMap(filesOf).sort());
    expect(binlogs()[0]).toBe(fileOf(b[0]!));
    // The server still has them, and a sync does not copy them back (it archives only the newer ones).
    const onServer = (await server.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => r.Log_name);
    expect(goes.every((l) => onServer.includes(l))).toBe(true);
    const sync = await e.ebrJson<{ stored: string[] }>(['binlog', 'sync']);
    expect(sync.stored.length).toBeGreaterThan(0);
    expect(sync.stored.every((l) => numberOf(l) > n3!)).toBe(true);
    expect(binlogs()[0]).toBe(fileOf(b[0]!));
    for (const f of goes.flatMap(filesOf)) expect(files()).not.toContain(f);
    const kept = files();
    // Nothing more is unneeded.
    expect((await e.ebrJson<PurgeOut>(['log', 'purge'])).removed).toEqual([]);
    expect(files()).toEqual(kept);
  });

  it('the purge retention runs after ebr backup (keep the last 3) removes exactly the binlogs before the oldest retained backup', async () => {
    setRetention('{ full: 3 }');
    const dry = await e.ebrJson<{ removed: string[]; logs: PurgeOut }>(['retention', '--dry-run']);
    expect(dry.removed).toEqual([]); // three backups, all kept
    expect(dry.logs.removed).toEqual([]);
    await mark('after b3');
    await flush();
    const before = files();
    const n1 = numberOf(fileOf(b[0]!));
    const n2 = numberOf(fileOf(b[1]!));
    b.push(await backup());
    const r = b[3]!.retention!;
    expect(r.logsError).toBeUndefined();
    expect(r.logsSkipped).toBeUndefined();
    expect(r.removed).toEqual([b[0]!.backupId]);
    expect(r.kept.sort()).toEqual(b.slice(1).map((x) => x.backupId).sort());
    expect(r.logs!.anchor).toBe(b[1]!.backupId);
    const goes = before.filter((f) => /^binlog\.\d+$/.test(f) && numberOf(f) < n2);
    expect(goes.length).toBeGreaterThanOrEqual(2);
    expect(goes.every((l) => numberOf(l) >= n1)).toBe(true);
    expect(r.logs!.removed.map((x) => x.name).sort()).toEqual(goes.flatMap((l) => [l, `${l}.range.json`]).sort());
    // b2's binlog and every later one stay, with all their files; the binlogs b4's backup archived are there too.
    const after = files();
    expect(after.filter((f) => numberOf(f) < n2)).toEqual([]);
    expect(before.filter((f) => numberOf(f) >= n2).every((f) => after.includes(f))).toBe(true);
    expect(binlogs()[0]).toBe(fileOf(b[1]!));
    expect(binlogs()).toContain(fileOf(b[3]!));
    const list = await e.ebrJson<Array<{ id: string; status: string }>>(['list']);
    expect(list.find((x) => x.id === b[0]!.backupId)!.status).toBe('removed');
  });

  it('after the purge the oldest retained backup restores to a time after its end, and the newest restores', async () => {
    const pitr = path.join(t.dir, 'restored-b2');
    const r = await e.ebrJson<{ details: { reachesTarget: boolean; replayed: string[] } }>(['restore', '--backup', b[1]!.backupId, '--to', pitr, '--until', afterB2]);
    expect(r.details.reachesTarget).toBe(true);
    await withRestoredServer(pitr, async (s) => {
      expect(await labels(s)).toEqual(['early', 'before b1', 'after b1', 'after b1 again', 'after b2']);
    });
    await mark('after b4');
    const sync = await e.ebrJson<{ stored: string[] }>(['binlog', 'sync']);
    expect(sync.stored.length).toBeGreaterThan(0);
    const latest = path.join(t.dir, 'restored-b4');
    await e.ebrJson(['restore', '--backup', b[3]!.backupId, '--to', latest]);
    await withRestoredServer(latest, async (s) => {
      expect(await labels(s)).toEqual(['early', 'before b1', 'after b1', 'after b1 again', 'after b2', 'later', 'after b3', 'after b4']);
    });
  });

  it('a pinned backup keeps its binlogs; unpinned, they go with it', async () => {
    setRetention('{ full: 1 }');
    const before = files();
    const dry = await e.ebrJson<{ removed: string[]; logs: PurgeOut }>(['retention', '--dry-run']);
    expect(dry.removed.sort()).toEqual([b[1]!.backupId, b[2]!.backupId].sort());
    expect(dry.logs.removed.map((x) => x.name)).toContain(fileOf(b[1]!));
    expect(dry.logs.removed.every((x) => numberOf(x.name) < numberOf(fileOf(b[3]!)))).toBe(true);
    expect(files()).toEqual(before);

    await e.ebrJson(['pin', b[1]!.backupId, '--note', 'audit']);
    const applied = await e.ebrJson<{ removed: string[]; kept: string[]; logs: PurgeOut }>(['retention']);
    expect(applied.removed).toEqual([b[2]!.backupId]);
    expect(applied.kept.sort()).toEqual([b[1]!.backupId, b[3]!.backupId].sort());
    expect(applied.logs.removed).toEqual([]);
    expect(files()).toEqual(before);
    expect((await e.ebrJson<PurgeOut>(['log', 'purge'])).removed).toEqual([]);
    expect(files()).toEqual(before);

    await e.ebrJson(['unpin', b[1]!.backupId]);
    const gone = await e.ebrJson<{ removed: string[]; logs: PurgeOut }>(['retention']);
    expect(gone.removed).toEqual([b[1]!.backupId]);
    const n4 = numberOf(fileOf(b[3]!));
    expect(gone.logs.removed.map((x) => x.name).sort()).toEqual(
      before.filter((f) => /^binlog\.\d+$/.test(f) && numberOf(f) < n4).flatMap((l) => [l, `${l}.range.json`]).sort(),
    );
    expect(files()).toEqual(before.filter((f) => numberOf(f) >= n4));
    expect(binlogs()[0]).toBe(fileOf(b[3]!));
  });

  it('ebr verify checks the binlog chain and names a binlog removed by hand', async () => {
    await mark('more');
    await flush();
    await mark('more again');
    await e.ebrJson(['binlog', 'sync']);
    const ok = await e.ebr(['verify']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/log archive \(binlog\): binlog history from \S+ .* no gap/);
    const [first, victim, next] = binlogs() as [string, string, string];
    expect(next).toBeDefined();
    for (const f of filesOf(victim)) rmSync(path.join(binlogDir(), f));
    const bad = await e.ebr(['verify']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`ebr: gap: binlog history from ${first}: ${victim} missing after ${first}, before ${next}`);
    expect(bad.stderr).toContain(b[3]!.backupId);
    expect(bad.stderr).toMatch(/hint: restores of /);
  });
});
