/**
 * The block-window gate with an adapter whose block outlives the session (capabilities.blockSurvivesSession),
 * faked by a lock file held by a process of its own: the gate arms the watchdog, unblocks on the session
 * and disarms; when the session cannot unblock, the block is ended from outside all the same.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BlockToken, DbmsSession } from '../../src/adapter-api.js';
import type { SnapshotProvider } from '../../src/snapshot/snapshot-provider.js';
import { holdWindow } from '../../src/workflow/block-window.js';
import { repoRoot, tempDir, waitFor } from '../helpers/env.js';
import { ensureBuilt } from './built.js';

const fixture = (f: string) => path.join(repoRoot, 'test/watchdog', f);
const t = tempDir();
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  t.cleanup();
});

function fakeSession(name: string, unblockWorks: boolean) {
  const lock = path.join(t.dir, `${name}.lock`);
  const count = path.join(t.dir, `${name}.releases`);
  let holder: ChildProcess | undefined;
  const session: DbmsSession = {
    async describe() {
      return {};
    },
    async discover() {
      return [];
    },
    async checkpoint() {},
    async block(): Promise<BlockToken> {
      holder = spawn(process.execPath, [fixture('fake-block.mjs'), lock], { stdio: 'ignore' });
      procs.push(holder);
      await waitFor('the fake block', () => (existsSync(lock) ? true : undefined), 10_000, 10);
      return { blockedAt: Date.now() };
    },
    async unblock() {
      if (!unblockWorks) return new Promise(() => undefined); // a session that hangs
      holder!.kill('SIGTERM');
      await waitFor('the fake block to end', () => (existsSync(lock) ? undefined : true), 5_000, 10);
      return {};
    },
    releaseCommand: () => [process.execPath, fixture('fake-unblock.mjs'), lock, count],
    async [Symbol.asyncDispose]() {},
  };
  const releases = () => (existsSync(count) ? readFileSync(count, 'utf8').trim().split('\n').filter(Boolean).length : 0);
  return { session, lock, releases };
}

const instantSnapshot: SnapshotProvider = {
  kind: 'fake',
  async check() {},
  async take() {
    return { pathOf: (c) => c.path, release: async () => {} };
  },
  async removeLeftover() {},
};

describe('block-window gate with a block that outlives the session', () => {
  it('arms the watchdog, unblocks on the session and disarms it: the release command never runs', async () => {
    ensureBuilt();
    const f = fakeSession('normal', true);
    const r = await holdWindow({
      session: f.session,
      provider: instantSnapshot,
      requestFor: () => ({ backupId: 'b1', chunks: [], volumes: [], journal: { created() {}, removed() {} } }),
      maxBlockMs: 5_000,
      watchdog: { catalogFile: path.join(t.dir, 'catalog.db') },
      signal: new AbortController().signal,
      context: { instance: 'fake', backupId: 'b1' },
    });
    expect(r.windowMs).toBeLessThan(5_000);
    expect(existsSync(f.lock)).toBe(false);
    const entry = JSON.parse(readFileSync(path.join(t.dir, 'watchdog/b1.json'), 'utf8'));
    expect(entry.state).toBe('released');
    expect(entry.releasedBy).toBe('owner');
    await new Promise((res) => setTimeout(res, 300));
    expect(f.releases()).toBe(0);
  });

  it('ends the block with the release command when the session cannot unblock', async () => {
    ensureBuilt();
    const f = fakeSession('hung', false);
    const started = Date.now();
    await expect(
      holdWindow({
        session: f.session,
        provider: instantSnapshot,
        requestFor: () => ({ backupId: 'b2', chunks: [], volumes: [], journal: { created() {}, removed() {} } }),
        maxBlockMs: 500,
        unblockTimeoutMs: 500,
        watchdog: { catalogFile: path.join(t.dir, 'catalog.db') },
        signal: new AbortController().signal,
        context: { instance: 'fake', backupId: 'b2' },
      }),
    ).rejects.toThrow(/unblock did not return within 500 ms/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(existsSync(f.lock)).toBe(false);
    expect(f.releases()).toBe(1);
    const entry = JSON.parse(readFileSync(path.join(t.dir, 'watchdog/b2.json'), 'utf8'));
    expect(entry.state).toBe('released');
    expect(entry.releasedBy).toBe('owner');
  });
});

describe('block-window gate: spaces listed at block', () => {
  it('freezes the spaces the DBMS listed once blocked, and hands them back', async () => {
    const listed = [{ name: 'db', critical: false, kind: 'database', chunks: [{ space: 'db', name: 'late', path: '/x/late', type: 'file' as const, size: 1 }] }];
    const session: DbmsSession = {
      async describe() {
        return {};
      },
      async discover() {
        return [];
      },
      async checkpoint() {},
      async block() {
        return { blockedAt: Date.now(), spaces: listed };
      },
      async unblock() {
        return {};
      },
      async [Symbol.asyncDispose]() {},
    };
    let frozen: unknown;
    const r = await holdWindow({
      session,
      provider: instantSnapshot,
      requestFor: (spaces) => {
        frozen = spaces;
        return { backupId: 'b3', chunks: (spaces ?? []).flatMap((s) => s.chunks), volumes: [], journal: { created() {}, removed() {} } };
      },
      maxBlockMs: 5_000,
      signal: new AbortController().signal,
      context: { instance: 'fake', backupId: 'b3' },
    });
    expect(frozen).toBe(listed);
    expect(r.spaces).toBe(listed);
  });
});
