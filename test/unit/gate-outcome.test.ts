/**
 * The gate tells unblock when the window failed (so a DBMS records no backup for a snapshot that does
 * not exist), and fails the backup when the session that held the freeze was lost inside the window.
 */
import { describe, expect, it } from 'vitest';
import type { BlockToken, DbmsSession, UnblockOutcome } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { SnapshotProvider } from '../../src/snapshot/snapshot-provider.js';
import { holdWindow } from '../../src/workflow/block-window.js';

function session(o: { lostAfterBlock?: boolean } = {}) {
  const seen: { unblocks: Array<UnblockOutcome | undefined>; lostAsked: number } = { unblocks: [], lostAsked: 0 };
  let lost: Error | undefined;
  const s: DbmsSession = {
    async describe() {
      return {};
    },
    async discover() {
      return [];
    },
    async checkpoint() {},
    async block(): Promise<BlockToken> {
      if (o.lostAfterBlock) lost = new Error('Connection lost - read ECONNRESET');
      return { blockedAt: Date.now() };
    },
    async unblock(_t, outcome) {
      seen.unblocks.push(outcome);
      return { details: { recorded: !outcome?.failed } };
    },
    lost() {
      seen.lostAsked++;
      return lost;
    },
    async [Symbol.asyncDispose]() {},
  };
  return { s, seen };
}

const provider = (fail?: Error): SnapshotProvider & { released: number } => {
  const p = {
    kind: 'fake',
    released: 0,
    async check() {},
    async take() {
      if (fail) throw fail;
      return { pathOf: (c: { path: string }) => c.path, release: async () => void p.released++ };
    },
    async removeLeftover() {},
  };
  return p;
};

const window = (s: DbmsSession, p: SnapshotProvider) =>
  holdWindow({ session: s, provider: p, requestFor: () => ({ backupId: 'b', chunks: [], volumes: [], journal: { created() {}, removed() {} } }), maxBlockMs: 5_000, signal: new AbortController().signal, context: { instance: 'i', backupId: 'b' } });

describe('the gate and the session', () => {
  it('a clean window unblocks with no failure and asks whether the session was lost', async () => {
    const { s, seen } = session();
    const r = await window(s, provider());
    expect(r.meta.details?.recorded).toBe(true);
    expect(seen.unblocks).toEqual([{}]);
    expect(seen.lostAsked).toBe(1);
  });

  it('a failed snapshot reaches unblock as { failed }, and the backup fails with the snapshot error', async () => {
    const { s, seen } = session();
    const boom = new Error('snapshot exploded');
    await expect(window(s, provider(boom))).rejects.toThrow(/snapshot exploded/);
    expect(seen.unblocks).toHaveLength(1);
    expect(seen.unblocks[0]?.failed).toBeInstanceOf(EbrError);
    expect(String(seen.unblocks[0]?.failed?.message)).toMatch(/snapshot exploded/);
  });

  it('a session lost inside the window fails the backup, still unblocks, and releases the snapshot', async () => {
    const { s, seen } = session({ lostAfterBlock: true });
    const p = provider();
    const err = await window(s, p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).message).toMatch(/session ended inside the window \(Connection lost - read ECONNRESET\)/);
    expect(seen.unblocks[0]?.failed).toBeDefined();
    expect(p.released).toBe(1);
  });
});
