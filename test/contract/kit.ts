/**
 * The adapter contract: one suite that every adapter passes, against a real server where one runs
 * here and against a documented stand-in where none can. It drives the adapter through the same gate
 * and CLI a backup uses, and holds each adapter to what the workflow relies on:
 *
 * - discovery: unique space names, every chunk inside its space with an absolute path, a critical space;
 * - its config section refuses an unknown key;
 * - its --dry-run plan lists statements in the workflow's phase order, connecting to nothing;
 * - the window: block, then the snapshot, then unblock on the same session, and the database released
 *   afterwards — also when the snapshot fails, when the run is cancelled, and at maxBlockMs;
 * - restore: an unknown space refused naming the known ones, a critical space refused, and a
 *   `restore --dry-run --to DIR` plan whose every write lands inside DIR and that writes nothing.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlockToken, DbmsAdapter, DbmsSession, InstanceContext, PlanStep, Space, UnblockOutcome } from '../../src/adapter-api.js';
import { loadConfig, pickInstance, type Config, type InstanceConfig } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';
import type { SnapshotProvider } from '../../src/snapshot/snapshot-provider.js';
import { holdWindow } from '../../src/workflow/block-window.js';
import { adapterOf, instanceContext } from '../../src/workflow/context.js';
import { runEbr, type RunResult } from '../helpers/env.js';

export interface ContractFixture {
  /** An ebr.yaml with exactly one instance of the adapter under test. */
  configFile: string;
  /** What the adapter needs in its environment (a stand-in's driver override), for this process and the CLI. */
  env?: Record<string, string>;
  /** Throws unless the database is out of the window: writes go through, no backup mode or suspend is left. */
  assertReleased(): Promise<void>;
  cleanup(): Promise<void> | void;
}

const phaseOrder = ['connect', 'preflight', 'discover', 'checkpoint', 'acquire', 'release', 'after-release'];
const never = new AbortController().signal;

/** A session that records the order of the calls the gate makes on it. */
function recorded(session: DbmsSession, events: string[]): DbmsSession {
  return {
    describe: () => session.describe(),
    discover: (s) => session.discover(s),
    checkpoint: (s) => session.checkpoint(s),
    async block(s): Promise<BlockToken> {
      events.push('block');
      const t = await session.block(s);
      events.push('blocked');
      return t;
    },
    async unblock(t, outcome?: UnblockOutcome) {
      events.push(outcome?.failed ? 'unblock(failed)' : 'unblock');
      return session.unblock(t, outcome);
    },
    ...(session.releaseCommand ? { releaseCommand: () => session.releaseCommand!() } : {}),
    ...(session.lost ? { lost: () => session.lost!() } : {}),
    [Symbol.asyncDispose]: () => session[Symbol.asyncDispose](),
  };
}

type TakeMode = 'ok' | 'fail' | 'hang';
function provider(events: string[], mode: TakeMode, onTake?: () => void): SnapshotProvider {
  return {
    kind: 'contract',
    async check() {},
    async take(_req, signal) {
      events.push('snapshot');
      onTake?.();
      if (mode === 'fail') throw new Error('the contract snapshot failed on purpose');
      if (mode === 'hang') {
        await new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        });
      }
      return { pathOf: (c) => c.path, release: async () => void events.push('snapshot released') };
    },
    async removeLeftover() {},
  };
}

export function describeAdapterContract(vendor: string, makeFixture: () => Promise<ContractFixture>): void {
  describe(`adapter contract: ${vendor}`, () => {
    let fx: ContractFixture;
    let config: Config;
    let instance: InstanceConfig;
    let adapter: DbmsAdapter;
    let ctx: InstanceContext;
    let spaces: Space[];
    const savedEnv: Record<string, string | undefined> = {};
    const ebr = (args: string[]): Promise<RunResult> => runEbr(['--config', fx.configFile, ...args], { env: { ...process.env, ...fx.env }, timeoutMs: 240_000 });

    beforeAll(async () => {
      fx = await makeFixture();
      for (const [k, v] of Object.entries(fx.env ?? {})) {
        savedEnv[k] = process.env[k];
        process.env[k] = v;
      }
      config = loadConfig(fx.configFile);
      instance = pickInstance(config, undefined);
      adapter = adapterOf(instance);
      ctx = instanceContext(config, instance);
    }, 300_000);
    afterAll(async () => {
      for (const [k, v] of Object.entries(savedEnv)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await fx?.cleanup();
    });

    /** One window on a fresh session (block is called once per session). */
    async function window(mode: TakeMode, o: { maxBlockMs?: number; abortInside?: boolean } = {}) {
      const events: string[] = [];
      const controller = new AbortController();
      const session = await adapter.connect(ctx, never);
      try {
        await session.checkpoint(never);
        const result = await holdWindow({
          session: recorded(session, events),
          // Cancelled once the window is open: the signal a SIGINT or the daemon's stop would give.
          provider: provider(events, mode, o.abortInside ? () => setTimeout(() => controller.abort(new Error('cancelled by the contract')), 50) : undefined),
          requestFor: (s) => ({ backupId: 'contract', chunks: (s ?? spaces).flatMap((x) => x.chunks), volumes: [], journal: { created() {}, removed() {} } }),
          maxBlockMs: o.maxBlockMs ?? 60_000,
          signal: controller.signal,
          context: { instance: instance.name, backupId: 'contract' },
        }).then(
          async (r) => {
            await r.snapshot.release();
            return { ok: true as const, r };
          },
          (err: unknown) => ({ ok: false as const, err }),
        );
        return { events, result };
      } finally {
        await session[Symbol.asyncDispose]();
      }
    }

    it('refuses an unknown key in its config section', () => {
      const raw = { ...(instance.settings as Record<string, unknown>), contractUnknownKey: 1 };
      expect(adapter.configSchema.safeParse(raw).success).toBe(false);
      expect(adapter.configSchema.safeParse(instance.settings).success).toBe(true);
    });

    it('discovers unique spaces, each chunk inside its space with an absolute path, and a critical space', async () => {
      await using session = await adapter.connect(ctx, never);
      await session.preflight?.(never);
      spaces = await session.discover(never);
      expect(spaces.length).toBeGreaterThan(0);
      expect(new Set(spaces.map((s) => s.name)).size).toBe(spaces.length);
      expect(spaces.some((s) => s.critical), 'a DBMS has spaces a partial restore must not replace alone').toBe(true);
      for (const s of spaces) {
        expect(s.kind.length).toBeGreaterThan(0);
        for (const c of s.chunks) {
          expect(c.space).toBe(s.name);
          expect(path.isAbsolute(c.path), `${c.path} of ${s.name}`).toBe(true);
          expect(c.size).toBeGreaterThanOrEqual(0);
        }
      }
      const names = spaces.flatMap((s) => s.chunks.map((c) => `${s.name}/${c.name}`));
      expect(new Set(names).size).toBe(names.length);
    });

    it('plans its backup in the workflow\'s phase order, with statements inside the window', () => {
      const steps: PlanStep[] = adapter.planBackup(ctx, spaces);
      const known = steps.filter((s) => phaseOrder.includes(s.phase)).map((s) => phaseOrder.indexOf(s.phase));
      expect(known.length).toBeGreaterThan(0);
      expect(known).toEqual([...known].sort((a, b) => a - b));
      for (const phase of ['acquire', 'release']) {
        expect(steps.some((s) => s.phase === phase && (s.kind === 'sql' || s.kind === 'command')), `a ${phase} statement`).toBe(true);
      }
    });

    it('blocks, then the snapshot is taken, then it unblocks; the database is released', async () => {
      const { events, result } = await window('ok');
      expect(result.ok, result.ok ? '' : String((result as { err: unknown }).err)).toBe(true);
      expect(events).toEqual(['block', 'blocked', 'snapshot', 'unblock', 'snapshot released']);
      await fx.assertReleased();
    });

    it('unblocks when the snapshot fails, and reports the snapshot\'s error', async () => {
      const { events, result } = await window('fail');
      expect(result.ok).toBe(false);
      expect(String((result as { err: Error }).err.message)).toMatch(/failed on purpose/);
      expect(events).toEqual(['block', 'blocked', 'snapshot', 'unblock(failed)']);
      await fx.assertReleased();
    });

    it('unblocks when the run is cancelled inside the window', async () => {
      const { events, result } = await window('hang', { abortInside: true });
      expect(result.ok).toBe(false);
      expect(String((result as { err: Error }).err.message)).toMatch(/cancelled by the contract/);
      expect(events).toEqual(['block', 'blocked', 'snapshot', 'unblock(failed)']);
      await fx.assertReleased();
    });

    it('unblocks at maxBlockMs and says the window was exceeded', async () => {
      const { events, result } = await window('hang', { maxBlockMs: 500 });
      expect(result.ok).toBe(false);
      expect((result as { err: EbrError }).err).toBeInstanceOf(EbrError);
      expect((result as { err: EbrError }).err.code).toBe('windowExceeded');
      expect(events).toEqual(['block', 'blocked', 'snapshot', 'unblock(failed)']);
      await fx.assertReleased();
    });

    describe('through the CLI', () => {
      let critical: string;
      let toDir: string;

      beforeAll(async () => {
        const r = await ebr(['--json', 'backup']);
        if (r.code !== 0) throw new Error(`ebr backup failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
        critical = spaces.find((s) => s.critical)!.name;
        toDir = path.join(path.dirname(fx.configFile), 'contract-restore-to');
        await fx.assertReleased();
      }, 300_000);

      it('refuses to restore an unknown space, naming the known ones', async () => {
        const r = await ebr(['restore', '--partial', 'no_such_space_xyz']);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/no_such_space_xyz/);
        expect(r.stderr).toContain(spaces[0]!.name);
      });

      it('refuses a partial restore of a critical space', async () => {
        const r = await ebr(['restore', '--partial', critical]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(/critical/);
      });

      it('plans a restore --to DIR whose every write is inside DIR, and writes nothing', async () => {
        const r = await ebr(['--json', 'restore', '--dry-run', '--to', toDir]);
        expect(r.code, r.stderr).toBe(0);
        const plan = JSON.parse(r.stdout) as { dryRun: boolean; roots: string[]; steps: PlanStep[] };
        expect(plan.dryRun).toBe(true);
        // DIR, and beside it only what the adapter declares (extraRoots: a directory the server reads a file from).
        expect(plan.roots).toContain(toDir);
        const inside = (p: string, root: string) => p === root || p.startsWith(`${root}${path.sep}`);
        const writes = plan.steps.filter((s) => s.kind === 'write');
        expect(writes.length).toBeGreaterThan(0);
        for (const w of writes) {
          const target = /^(\/\S+)/.exec(w.text)?.[1];
          if (target) expect(plan.roots.some((root) => inside(path.resolve(target), root)), `${w.phase}: ${w.text} is outside ${plan.roots.join(', ')}`).toBe(true);
        }
        // Every chunk of the backup goes under DIR itself.
        for (const w of writes.filter((s) => s.phase === 'stage')) expect(inside(/^(\/\S+)/.exec(w.text)![1]!, toDir), w.text).toBe(true);
        expect(existsSync(toDir) ? readdirSync(toDir) : []).toEqual([]);
      });
    });
  });
}
