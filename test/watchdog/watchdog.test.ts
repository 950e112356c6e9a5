/**
 * The watchdog for blocks that outlive the ebr process, against a fake block that persists across
 * processes (a lock file held by a process of its own): deadline, disarm, kill -9 of the owner, a
 * dead watchdog repaired by the next command, a failing release retried.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armWatchdog, repairUnfinishedBlocks, type WatchdogEntry } from '../../src/workflow/watchdog.js';
import { repoRoot, tempDir, waitFor } from '../helpers/env.js';
import { ensureBuilt } from './built.js';

const fixture = (f: string) => path.join(repoRoot, 'test/watchdog', f);
const started: ChildProcess[] = [];
const pidsToKill: number[] = [];

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};

/** Starts a fake block; resolves when its lock file exists. */
async function fakeBlock(dir: string, name: string) {
  const lock = path.join(dir, `${name}.lock`);
  const count = path.join(dir, `${name}.releases`);
  const p = spawn(process.execPath, [fixture('fake-block.mjs'), lock], { stdio: 'ignore' });
  started.push(p);
  await waitFor('the fake block to hold its lock', () => (existsSync(lock) ? true : undefined), 10_000, 10);
  const releaseCommand = [process.execPath, fixture('fake-unblock.mjs'), lock, count];
  return {
    lock,
    releaseCommand,
    blocked: () => existsSync(lock) && alive(p.pid!),
    releases: () => (existsSync(count) ? readFileSync(count, 'utf8').trim().split('\n').filter(Boolean).length : 0),
  };
}

/** An owner process (like ebr) that arms a watchdog over the block and then does what `mode` says. */
async function owner(watchdogJs: string, dir: string, backupId: string, deadlineMs: number, mode: string, releaseCommand: string[], env: NodeJS.ProcessEnv = {}) {
  const p = spawn(process.execPath, [fixture('owner.mjs'), watchdogJs, dir, backupId, String(deadlineMs), mode, '--', ...releaseCommand], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  started.push(p);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  const handle = await waitFor('the owner to arm its watchdog', () => (out.includes('\n') ? (JSON.parse(out.split('\n')[0]!) as { pid: number; entryFile: string }) : undefined), 15_000, 10);
  pidsToKill.push(handle.pid);
  return { proc: p, watchdogPid: handle.pid, entryFile: handle.entryFile, output: () => out };
}

const entryOf = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as WatchdogEntry;

describe('watchdog for blocks that outlive the ebr process', () => {
  const t = tempDir('ebr-watchdog-');
  const dir = path.join(t.dir, 'watchdog');
  let watchdogJs: string;
  beforeAll(() => {
    watchdogJs = ensureBuilt();
  });
  afterAll(() => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const pid of pidsToKill) if (alive(pid)) process.kill(pid, 'SIGKILL');
    t.cleanup();
  });

  it('journals the block before returning, and ends it at the deadline when nobody disarms', async () => {
    const block = await fakeBlock(t.dir, 'deadline');
    const wd = await armWatchdog({ dir, backupId: 'b-deadline', deadlineMs: 700, releaseCommand: block.releaseCommand, pollMs: 50 });
    const armedAt = Date.now();
    const entry = entryOf(wd.entryFile);
    expect(entry.state).toBe('armed');
    expect(entry.owner.pid).toBe(process.pid);
    expect(entry.releaseCommand).toEqual(block.releaseCommand);
    expect(alive(wd.pid)).toBe(true);
    await sleep(300);
    expect(block.blocked()).toBe(true); // before the deadline the watchdog waits
    await waitFor('the watchdog to end the block', () => (!block.blocked() ? true : undefined), 5_000, 10);
    expect(Date.now()).toBeGreaterThanOrEqual(entry.deadlineAt);
    expect(Date.now() - armedAt).toBeLessThan(3_000);
    await waitFor('the entry to say released', () => (entryOf(wd.entryFile).state === 'released' ? true : undefined), 5_000, 10);
    expect(entryOf(wd.entryFile)).toMatchObject({ releasedBy: 'watchdog', reason: 'deadline reached', result: { exitCode: 0 } });
    // The owner, late, learns that the block is no longer its to end.
    expect(wd.claim()).toBe(false);
    expect(await wd.disarm()).toEqual({ releasedBy: 'watchdog' });
    await waitFor('the watchdog to exit', () => (!alive(wd.pid) ? true : undefined), 5_000, 20);
    expect(block.releases()).toBe(1);
  });

  it('claim → unblock → disarm: the owner ends the block, the watchdog stops and never runs the release command', async () => {
    const block = await fakeBlock(t.dir, 'disarm');
    const wd = await armWatchdog({ dir, backupId: 'b-disarm', deadlineMs: 800, releaseCommand: block.releaseCommand, pollMs: 50 });
    expect(wd.claim()).toBe(true);
    process.kill(Number(readFileSync(block.lock, 'utf8')), 'SIGTERM'); // the owner's own unblock, on its session
    expect(await wd.disarm()).toEqual({ releasedBy: 'owner' });
    await waitFor('the watchdog to stop', () => (!alive(wd.pid) ? true : undefined), 5_000, 20);
    await sleep(1200); // past the deadline
    expect(block.releases()).toBe(0);
    expect(entryOf(wd.entryFile)).toMatchObject({ state: 'released', releasedBy: 'owner' });
    expect(await wd.disarm()).toEqual({ releasedBy: 'owner' }); // twice is harmless
  });

  it('kill -9 of the owner inside the window: the watchdog ends the block at once, long before the deadline', async () => {
    const block = await fakeBlock(t.dir, 'kill');
    const o = await owner(watchdogJs, dir, 'b-kill', 60_000, 'hold', block.releaseCommand);
    await sleep(200);
    expect(block.blocked()).toBe(true);
    const killedAt = Date.now();
    o.proc.kill('SIGKILL');
    await waitFor('the watchdog to end the block', () => (!block.blocked() ? true : undefined), 5_000, 10);
    expect(Date.now() - killedAt).toBeLessThan(2_000);
    await waitFor('the entry to say released', () => (entryOf(o.entryFile).state === 'released' ? true : undefined), 5_000, 10);
    expect(entryOf(o.entryFile)).toMatchObject({ releasedBy: 'watchdog', reason: expect.stringMatching(/owner pid \d+ died/) });
    await waitFor('the watchdog to exit', () => (!alive(o.watchdogPid) ? true : undefined), 5_000, 20);
    expect(block.releases()).toBe(1);
    // Nothing left for the next command to do.
    const report = await repairUnfinishedBlocks(dir);
    expect(report.released).toEqual([]);
    expect(report.active).toEqual([]);
  });

  it('an owner that claimed the release and then died is taken over by the watchdog', async () => {
    const block = await fakeBlock(t.dir, 'claimed');
    const o = await owner(watchdogJs, dir, 'b-claimed', 60_000, 'claim-hold', block.releaseCommand);
    await waitFor('the owner to claim', () => (existsSync(path.join(dir, 'b-claimed.claim.1')) ? true : undefined), 5_000, 10);
    await sleep(300);
    expect(block.blocked()).toBe(true); // a live owner holding the claim is left to finish
    o.proc.kill('SIGKILL');
    await waitFor('the watchdog to take over', () => (!block.blocked() ? true : undefined), 5_000, 10);
    expect(existsSync(path.join(dir, 'b-claimed.claim.2'))).toBe(true);
    expect(block.releases()).toBe(1);
  });

  it('owner and watchdog both killed: the block stays until the next command repairs it, exactly once', async () => {
    const block = await fakeBlock(t.dir, 'both');
    const o = await owner(watchdogJs, dir, 'b-both', 60_000, 'hold', block.releaseCommand);
    process.kill(o.watchdogPid, 'SIGKILL');
    o.proc.kill('SIGKILL');
    await waitFor('both to be gone', () => (!alive(o.watchdogPid) && o.proc.exitCode !== null || o.proc.signalCode !== null ? true : undefined), 5_000, 10);
    await sleep(300);
    expect(block.blocked()).toBe(true); // nobody is left to end it…
    const report = await repairUnfinishedBlocks(dir);
    expect(report.released).toEqual([{ backupId: 'b-both', exitCode: 0 }]);
    expect(block.blocked()).toBe(false); // …until the next ebr command
    expect(entryOf(o.entryFile)).toMatchObject({ state: 'released', releasedBy: 'repair' });
    const again = await repairUnfinishedBlocks(dir);
    expect(again.released).toEqual([]);
    expect(block.releases()).toBe(1);
  });

  it('a failing release command is journaled as failed and retried by the next repair', async () => {
    const block = await fakeBlock(t.dir, 'failing');
    const o = await owner(watchdogJs, dir, 'b-failing', 60_000, 'hold', block.releaseCommand, { FAIL: '1' });
    o.proc.kill('SIGKILL');
    await waitFor('the watchdog to try and fail', () => (entryOf(o.entryFile).state === 'release-failed' ? true : undefined), 5_000, 10);
    expect(entryOf(o.entryFile)).toMatchObject({ releasedBy: 'watchdog', result: { exitCode: 3, output: expect.stringContaining('told to fail') } });
    await waitFor('the watchdog to exit', () => (!alive(o.watchdogPid) ? true : undefined), 5_000, 20);
    expect(block.blocked()).toBe(true);
    const report = await repairUnfinishedBlocks(dir); // this process has no FAIL=1
    expect(report.released.map((r) => r.backupId)).toEqual(['b-failing']);
    expect(block.blocked()).toBe(false);
    expect(block.releases()).toBe(2);
  });

  it('repair leaves the block of a live owner alone, and prunes old released entries', async () => {
    const block = await fakeBlock(t.dir, 'live');
    const o = await owner(watchdogJs, dir, 'b-live', 60_000, 'hold', block.releaseCommand);
    const report = await repairUnfinishedBlocks(dir);
    expect(report.active).toEqual(['b-live']);
    expect(block.blocked()).toBe(true);
    o.proc.kill('SIGKILL');
    await waitFor('the watchdog to journal the release', () => (entryOf(o.entryFile).state === 'released' ? true : undefined), 5_000, 10);
    const pruned = await repairUnfinishedBlocks(dir, { keepReleasedMs: 0 });
    expect(pruned.pruned.sort()).toEqual(['b-both', 'b-claimed', 'b-deadline', 'b-disarm', 'b-failing', 'b-kill', 'b-live']);
  });
});
