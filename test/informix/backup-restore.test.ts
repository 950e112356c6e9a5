/**
 * Informix end to end through the built CLI (`npm run build` first) against the stand-ins of onstat,
 * onmode and onbar (test/informix/double), laid out as an INFORMIXDIR: the calls of a backup compared
 * to `backup --dry-run` and in the order the ON-Bar guide gives, the window measured, the logical log
 * current at block time backed up, byte-range chunks streamed as exactly their ranges, release on an
 * error inside the window and on SIGTERM, `ebr release`, and the restores — warm partial, cold full,
 * point in time — with what ran compared to `restore --dry-run`, each chunk put back before ON-Bar ran
 * and no byte outside the chunks touched; refusals and tool errors. No Informix server is involved.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeInstanceConfig } from '../helpers/config-file.js';
import { runEbr, spawnEbr, tempDir, waitFor, type RunResult } from '../helpers/env.js';
import { startInformixDouble, type InformixDouble } from './double/index.js';

const tmp = tempDir('ebr-informix-e2e-');
let db: InformixDouble;
let config: string;

const ebr = (args: string[], cfg = config) => runEbr(['--config', cfg, ...args], { env: db.env, timeoutMs: 120_000 });
const json = <T>(r: RunResult): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
interface Step {
  phase: string;
  kind: string;
  text: string;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** A planned command as the stand-in records it: tool name, then its arguments (the plan quotes words with blanks). */
const asRun = (text: string) => {
  const words = [...text.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  return [path.basename(words[0]!), ...words.slice(1)].join(' ');
};
const plannedCommands = (steps: Step[]) => steps.filter((s) => s.kind === 'command').map((s) => asRun(s.text));
/** The runs since `from`, as `tool arg…` (an argument with a blank stays one word: `-t 2026-… 12:00:00`). */
const since = (from: number) => db.commands().slice(from);
const disks = () => db.disks.map((d) => readFileSync(d));
/** Overwrites both disks whole with a pattern: chunks, the gaps between them and the tails. */
function scribble(tag: number) {
  for (const d of db.disks) {
    const b = readFileSync(d);
    for (let i = 0; i < b.length; i++) b[i] = (b[i]! ^ tag ^ (i >> 8)) & 0xff;
    writeFileSync(d, b);
  }
}

beforeAll(() => {
  db = startInformixDouble(path.join(tmp.dir, 'db'), { informixDir: true });
  config = writeInstanceConfig(tmp.dir, 'ids', db.instanceYaml, { maxBlockMs: 20000 });
});
afterAll(() => tmp.cleanup());

describe('Informix through the CLI (stand-ins)', () => {
  let first: { backupId: string; blockWindowMs: number; windowSteps: { block: number; snapshot: number; unblock: number }; meta: { logStart: string; details: { blockedAt: string; unblockedAt: string } } };
  let atBackup: Record<number, Buffer>;

  it('backs up: onmode -c block, one onstat -l, the snapshot, onmode -c unblock, onbar -b -l -c — exactly what --dry-run lists', async () => {
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'backup', '--dry-run']));
    expect(db.runs()).toEqual([]); // a dry run runs no tool
    atBackup = Object.fromEntries([1, 2, 3, 5].map((c) => [c, db.bytes(c)]));
    first = json(await ebr(['--json', 'backup']));
    const runs = db.runs();
    expect(runs.map((r) => [r.tool, ...r.argv].join(' '))).toEqual(plannedCommands(plan.steps));
    expect(runs.map((r) => [r.tool, ...r.argv].join(' '))).toEqual([
      'onstat -',
      'onstat -d',
      'onstat -l',
      'onmode -c',
      'onmode -c block',
      'onstat -l',
      'onmode -c unblock',
      'onbar -b -l -c',
    ]);
    // The tools ran with the server's environment, from <informixDir>/bin.
    expect(new Set(runs.map((r) => r.server))).toEqual(new Set(['ids1']));
    expect(new Set(runs.map((r) => r.informixdir))).toEqual(new Set([db.informixDir]));
    expect(plan.steps.filter((s) => s.kind === 'command').every((s) => s.text.startsWith(path.join(db.informixDir, 'bin') + '/'))).toBe(true);
    const s = db.state();
    expect(s).toMatchObject({ blocked: false, blocks: 1, unblocks: 1 });
    // The log current at block time (7) was closed and backed up once the server was unblocked.
    expect(first.meta.logStart).toBe('7');
    expect(s.currentLog).toBe(8);
    expect(s.logs.find((l) => l.uniqid === 7)!.backedUp).toBe(true);
  });

  it('measures the window from the block to the unblock, and backs up the log only after it', () => {
    const runs = db.runs();
    const at = (cmd: string) => Date.parse(runs.find((r) => [r.tool, ...r.argv].join(' ') === cmd)!.at);
    const blockedAt = Date.parse(first.meta.details.blockedAt);
    const unblockedAt = Date.parse(first.meta.details.unblockedAt);
    expect(at('onmode -c block')).toBeLessThanOrEqual(blockedAt);
    expect(blockedAt).toBeLessThanOrEqual(at('onmode -c unblock'));
    expect(at('onmode -c unblock')).toBeLessThanOrEqual(unblockedAt);
    // The log backup is no part of the window: it starts once the unblock has returned.
    expect(unblockedAt).toBeLessThanOrEqual(at('onbar -b -l -c'));
    // The window holds the snapshot and the unblock, and lies within the block's start and the unblock's end.
    expect(first.blockWindowMs).toBeGreaterThanOrEqual(first.windowSteps.snapshot + first.windowSteps.unblock);
    expect(first.blockWindowMs).toBeLessThanOrEqual(unblockedAt - at('onmode -c block') + 5);
  });

  it('discovers rootdbs and logdbs as critical, leaves tempdbs out, and streams each chunk as exactly its byte range', async () => {
    const spaces = json<Array<{ name: string; critical: boolean }> | { spaces: Array<{ name: string; critical: boolean }> }>(await ebr(['--json', 'spaces']));
    const rows = Array.isArray(spaces) ? spaces : spaces.spaces;
    expect(rows.map((r) => [r.name, r.critical])).toEqual([
      ['rootdbs', true],
      ['datadbs', false],
      ['logdbs', true],
    ]);
    const dir = path.join(tmp.dir, 'backups', 'ids', first.backupId);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { members: Array<{ name: string; path: string; fileOffset: number; size: number; sha256: string }> };
    expect(manifest.members.map((m) => m.name).sort()).toEqual(['datadbs/chunk2', 'datadbs/chunk3', 'logdbs/chunk5', 'rootdbs/chunk1']);
    for (const m of manifest.members) {
      const chunk = Number(/chunk(\d+)$/.exec(m.name)![1]);
      const r = db.range(chunk);
      expect([m.path, m.fileOffset, m.size], m.name).toEqual([r.file, r.start, r.end - r.start]);
      expect(m.sha256, m.name).toBe(sha(atBackup[chunk]!));
      // The dir target keeps each member as a file of its own: exactly the range's bytes.
      expect(sha(readFileSync(path.join(dir, 'spaces', m.name.split('/')[0]!, m.name))), m.name).toBe(sha(atBackup[chunk]!));
    }
    for (const f of ['onconfig', 'sqlhosts', 'ixbar'] as const) expect(readFileSync(path.join(dir, 'meta', f))).toEqual(readFileSync(db.files[f]));
  });

  it('unblocks when the snapshot fails inside the window, and backs up no log for the failed backup', async () => {
    const from = db.runs().length;
    db.update((s) => {
      s.blockRename = db.disks[1];
    });
    try {
      const r = await ebr(['backup']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      renameSync(`${db.disks[1]}.gone`, db.disks[1]);
      db.update((s) => {
        delete s.blockRename;
      });
    }
    expect(since(from).filter((c) => c.startsWith('onmode') || c.startsWith('onbar'))).toEqual(['onmode -c', 'onmode -c block', 'onmode -c unblock']);
    expect(db.state().blocked).toBe(false);
    const list = json<Array<{ status: string }> | { backups: Array<{ status: string }> }>(await ebr(['--json', 'list']));
    expect((Array.isArray(list) ? list : list.backups).map((b) => b.status).sort()).toEqual(['complete', 'failed']);
  });

  it('unblocks on SIGTERM inside the window', async () => {
    const from = db.runs().length;
    const p = spawnEbr(['--config', config, 'backup'], { env: { ...db.env, EBR_FAULT_HOLD_WINDOW_MS: '120000' } });
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    await waitFor(`the server blocked (ebr said: ${stderr})`, () => (db.state().blocked ? true : undefined), 60_000, 50);
    // The snapshot is taken and the window held open: the onstat -l inside the window has run.
    await waitFor('the onstat -l inside the window', () => (since(from).filter((c) => c === 'onstat -l').length === 2 ? true : undefined), 20_000, 50);
    p.kill('SIGTERM');
    expect(await exited).not.toBe(0);
    expect(db.state().blocked).toBe(false);
    expect(since(from).filter((c) => c.startsWith('onmode') || c.startsWith('onbar'))).toEqual(['onmode -c', 'onmode -c block', 'onmode -c unblock']);
  }, 90_000);

  it('a failed log backup after the unblock fails the backup, naming onbar, the path and the activity log', async () => {
    db.update((s) => {
      s.fail = { 'onbar -b -l -c': { message: 'BAR0002: The storage manager is not responding.', exit: 127 } };
    });
    try {
      const r = await ebr(['backup']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/onbar/);
      expect(r.stderr).toContain(path.join(db.informixDir, 'bin', 'onbar'));
      expect(r.stderr).toMatch(/BAR0002/);
      expect(r.stderr).toMatch(/BAR_ACT_LOG/);
      expect(db.state().blocked).toBe(false);
    } finally {
      db.update((s) => {
        delete s.fail;
      });
    }
  });

  it('a missing tool is named with the path tried and the fix', async () => {
    const t = tempDir('ebr-informix-missing-');
    try {
      const yaml = db.instanceYaml.replace(/informixDir: .*/, `informixDir: ${path.join(t.dir, 'no-informix')}`);
      const cfg = writeInstanceConfig(t.dir, 'ids', yaml);
      const r = await ebr(['backup'], cfg);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`onstat not found at ${path.join(t.dir, 'no-informix', 'bin', 'onstat')}`);
      expect(r.stderr).toMatch(/hint: .*informix\.informixDir/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      t.cleanup();
    }
  });

  it('refuses a backup while the server is already blocked for one, and `ebr release` ends that block but not one of the server\'s own', async () => {
    db.update((s) => {
      s.blocked = true;
    });
    const r = await ebr(['backup']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/already blocked/);
    expect(r.stderr).toMatch(/ebr release --instance ids/);
    expect(json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'ids'])).released).toBe(true);
    expect(db.state().blocked).toBe(false);
    db.update((s) => {
      s.otherBlock = 'CKPT';
    });
    const from = db.runs().length;
    expect(json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'ids'])).released).toBe(false);
    expect(since(from)).toEqual(['onstat -']);
    db.update((s) => {
      delete s.otherBlock;
    });
  });

  it('`ebr log sync` has ON-Bar back up the logical logs', async () => {
    const from = db.runs().length;
    json(await ebr(['--json', 'log', 'sync']));
    expect(since(from)).toEqual(['onbar -b -l']);
  });

  it('refuses a partial restore of rootdbs or logdbs (critical), running no tool', async () => {
    const from = db.runs().length;
    for (const space of ['rootdbs', 'logdbs']) {
      const r = await ebr(['restore', '--backup', first.backupId, '--partial', space]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/critical/);
      expect(r.stderr).toContain(space);
    }
    expect(since(from)).toEqual([]);
  });

  it('restores datadbs warm: its two chunks back at their offsets, then onbar -r -e -p datadbs and onbar -r -l — as planned; no other byte touched', async () => {
    scribble(0x5a);
    const outsideBefore = db.outside([2, 3]);
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', first.backupId, '--partial', 'datadbs', '--dry-run']));
    const from = db.runs().length;
    json(await ebr(['--json', 'restore', '--backup', first.backupId, '--partial', 'datadbs']));
    expect(since(from)).toEqual(plannedCommands(plan.steps));
    expect(since(from)).toEqual(['onstat -', 'onbar -r -e -p datadbs', 'onbar -r -l']);
    expect(db.bytes(2)).toEqual(atBackup[2]);
    expect(db.bytes(3)).toEqual(atBackup[3]);
    expect(db.outside([2, 3])).toEqual(outsideBefore);
    // ON-Bar found the chunks already put back when it ran.
    const warm = db.state().restores.find((x) => x.kind === 'warm-physical')!;
    expect([warm.chunks!['2'], warm.chunks!['3']]).toEqual([sha(atBackup[2]!), sha(atBackup[3]!)]);
    expect(db.state().restores.at(-1)!.kind).toBe('logical');
  });

  it('refuses a full restore while the server is on-line, writing nothing', async () => {
    const before = disks();
    const r = await ebr(['restore', '--backup', first.backupId]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/off-line/);
    expect(r.stderr).toMatch(/onmode -ky/);
    expect(disks()).toEqual(before);
  });

  it('restores the whole server cold: logs salvaged, every chunk and the missing ixbar put back, then onbar -r -e — as planned', async () => {
    db.update((s) => {
      s.mode = 'offline';
    });
    scribble(0x33);
    rmSync(db.files.ixbar);
    const outsideBefore = db.outside([1, 2, 3, 5]);
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', first.backupId, '--dry-run']));
    expect(plan.steps.some((s) => s.kind === 'write' && s.text.startsWith(`${db.files.ixbar} `))).toBe(true);
    const from = db.runs().length;
    const out = json<{ notes: string[] }>(await ebr(['--json', 'restore', '--backup', first.backupId]));
    expect(since(from)).toEqual(plannedCommands(plan.steps));
    expect(since(from)).toEqual(['onstat -', 'onbar -b -l -s', 'onbar -r -e']);
    for (const c of [1, 2, 3, 5]) expect(db.bytes(c), `chunk ${c}`).toEqual(atBackup[c]);
    expect(db.outside([1, 2, 3, 5])).toEqual(outsideBefore);
    const cold = db.state().restores.at(-1)!;
    expect(cold).toMatchObject({ kind: 'cold', until: null, salvaged: true });
    expect(cold.chunks).toMatchObject(Object.fromEntries([1, 2, 3, 5].map((c) => [String(c), sha(atBackup[c]!)])));
    expect(readFileSync(db.files.ixbar, 'utf8')).toBe('ids1 rootdbs R 1 1 0\n');
    expect(out.notes.join('\n')).toMatch(/wrote ixbar/);
  });

  it('restores to a point in time with onbar -r -e -t in the host\'s local time, and refuses a time before the backup', async () => {
    const early = await ebr(['restore', '--backup', first.backupId, '--until', new Date(Date.parse(first.meta.details.blockedAt) - 3_600_000).toISOString()]);
    expect(early.code, early.stderr).toBe(2);
    expect(early.stderr).toMatch(/before backup/);
    db.update((s) => {
      s.mode = 'offline';
    });
    const until = new Date(Date.parse(first.meta.details.unblockedAt) + 5_000);
    until.setMilliseconds(0);
    const p = (n: number) => String(n).padStart(2, '0');
    const local = `${until.getFullYear()}-${p(until.getMonth() + 1)}-${p(until.getDate())} ${p(until.getHours())}:${p(until.getMinutes())}:${p(until.getSeconds())}`;
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', first.backupId, '--until', until.toISOString(), '--dry-run']));
    const from = db.runs().length;
    json(await ebr(['--json', 'restore', '--backup', first.backupId, '--until', until.toISOString()]));
    expect(since(from)).toEqual(plannedCommands(plan.steps));
    expect(since(from)).toEqual(['onstat -', 'onbar -b -l -s', `onbar -r -e -t ${local}`]);
    expect(db.runs().at(-1)!.argv).toEqual(['-r', '-e', '-t', local]);
    expect(db.state().restores.at(-1)).toMatchObject({ kind: 'cold', until: local });
  });

  it('a failing onbar -r -e fails the restore naming onbar and its path, and puts the old bytes back', async () => {
    db.update((s) => {
      s.mode = 'offline';
      s.fail = { 'onbar -r -e': { message: 'BAR0236: The external restore failed.', exit: 1 } };
    });
    scribble(0x11);
    const before = disks();
    try {
      const r = await ebr(['restore', '--backup', first.backupId]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/onbar/);
      expect(r.stderr).toContain(path.join(db.informixDir, 'bin', 'onbar'));
      expect(r.stderr).toMatch(/BAR0236/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      db.update((s) => {
        delete s.fail;
      });
    }
    expect(disks()).toEqual(before);
  });
});
