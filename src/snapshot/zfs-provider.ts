/**
 * `zfs`: `zfs snapshot` of every dataset that holds a chunk, in ONE command per pool — ZFS takes the
 * snapshots of one command atomically (all at the same transaction group; libzfs_core's lzc_snapshot
 * requires them to share a pool, so datasets of several pools take one command each, in the window).
 * Chunks are read through `<mountpoint>/.zfs/snapshot/<name>/`, which ZFS mounts on first access, and
 * the snapshots are destroyed at release, or by the next run when a crashed one left them.
 */
import path from 'node:path';
import { z } from 'zod';
import { EbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Volume } from '../model.js';
import type { ProviderDeps } from './btrfs-provider.js';
import { execaRunner, lastLines, missingCommand, runChecked, type CommandRunner, type CommandTool } from './command-runner.js';
import { copyFallbackMatcher, freezeGroup, releaseNewestFirst, placeChunks, type Placement } from './consistency-group.js';
import type { Snapshot, SnapshotProvider, SnapshotResource, SnapshotSettings } from './snapshot-provider.js';
import { removeStagingDir } from './staging.js';
import { readMounts, realPathOf } from './volumes.js';

const tool: CommandTool = { provider: 'zfs', packageOf: { zfs: 'zfsutils-linux' } };
/** Only snapshots named like this are ever destroyed: a dataset name without `@` must never reach `zfs destroy`. */
const ebrSnapshot = /^[A-Za-z0-9][A-Za-z0-9_.:/ -]*@ebr-[A-Za-z0-9_.:-]+$/;

/** The keys of `snapshot:` with `provider: zfs`. */
export const zfsSettings = z.object({ provider: z.string(), staging: z.string().optional(), copyFallback: z.unknown().optional() }).strict();

interface Plan {
  placement: Placement;
  /** Dataset name → the volume (mount) it is read through. */
  datasets: Map<string, Volume>;
}

export function zfsProvider(settings: SnapshotSettings, deps: ProviderDeps = {}): SnapshotProvider {
  const parsed = zfsSettings.safeParse(settings);
  if (!parsed.success) throw new EbrError('config', `snapshot: ${parsed.error.issues[0]!.message}`);
  const s = parsed.data;
  const run = deps.run ?? execaRunner;
  const mounts = deps.mounts ?? (() => readMounts());
  const copyAllowed = copyFallbackMatcher(s.copyFallback, 'zfs');
  let planned: { chunks: Chunk[]; plan: Plan } | undefined;

  const planFor = (chunks: Chunk[]): Plan => {
    if (planned?.chunks === chunks) return planned.plan;
    const placement = placeChunks(
      'zfs',
      chunks,
      mounts(),
      (v) => (v.fsType !== 'zfs' ? `it is ${v.fsType}, not ZFS` : v.root !== '/' ? `it is a bind mount of ${v.root} inside dataset ${v.device}, and .zfs/snapshot is only at the dataset's own mount point` : undefined),
      copyAllowed,
    );
    const datasets = new Map<string, Volume>();
    for (const { volume } of placement.frozen) datasets.set(volume.device, volume);
    const plan = { placement, datasets };
    planned = { chunks, plan };
    return plan;
  };

  return {
    kind: 'zfs',

    async check(request, signal) {
      const plan = planFor(request.chunks);
      if (plan.datasets.size === 0) return;
      const names = [...plan.datasets.keys()].sort();
      // One listing checks at once that the command exists and every dataset is a mounted filesystem.
      const listed = await runChecked(run, tool, ['zfs', 'list', '-H', '-o', 'name,mountpoint', '-t', 'filesystem', ...names], { signal, context: { phase: 'check-snapshot' } });
      const found = new Map(listed.stdout.split('\n').filter(Boolean).map((l) => l.split('\t') as [string, string]));
      for (const name of names) {
        if (!found.has(name)) throw new EbrError('snapshot', `zfs list did not report dataset ${name}`, { context: { phase: 'check-snapshot', device: name } });
      }
      throwIfAborted(signal, { phase: 'check-snapshot' });
    },

    async take(request, signal) {
      const steps: Record<string, number> = {};
      const r0 = performance.now();
      const plan = planFor(request.chunks);
      steps.resolve = performance.now() - r0;
      const name = `ebr-${request.backupId}`;
      const journaled: SnapshotResource[] = [];
      let fallback: Snapshot | undefined;
      const byChunk = new Map<string, string>();
      for (const { chunk, volume } of plan.placement.frozen) {
        byChunk.set(chunk.name, path.join(volume.mountPoint, '.zfs', 'snapshot', name, path.relative(volume.mountPoint, realPathOf(chunk.path))));
      }
      const snapshot: Snapshot = {
        steps,
        pathOf: (chunk) => byChunk.get(chunk.name) ?? (fallback ? fallback.pathOf(chunk) : chunk.path),
        async release() {
          await releaseNewestFirst(fallback, journaled, (r) => destroySnapshot(run, r.path), (r) => r, request.journal);
        },
      };
      return freezeGroup({
        provider: 'zfs',
        request,
        copied: plan.placement.copied,
        staging: s.staging,
        signal,
        steps,
        snapshot,
        setFallback: (f) => (fallback = f),
        freeze: async () => {
          const byPool = new Map<string, string[]>();
          for (const dataset of [...plan.datasets.keys()].sort()) {
            const pool = dataset.split('/')[0]!;
            byPool.set(pool, [...(byPool.get(pool) ?? []), `${dataset}@${name}`]);
          }
          for (const [pool, snaps] of byPool) {
            for (const snap of snaps) {
              const r: SnapshotResource = { provider: 'zfs', kind: 'zfs-snapshot', path: snap };
              request.journal.created(r);
              journaled.push(r);
            }
            const t0 = performance.now();
            await runChecked(run, tool, ['zfs', 'snapshot', ...snaps], { signal, context: { phase: 'acquire', pool } });
            steps[`pool ${pool}`] = performance.now() - t0;
          }
        },
      });
    },

    async removeLeftover(resource) {
      if (resource.kind === 'staging-dir') return removeStagingDir(resource);
      if (resource.kind !== 'zfs-snapshot') throw new Error(`the zfs provider does not know resources of kind ${resource.kind}`);
      await destroySnapshot(run, resource.path);
    },
  };
}

/** Destroys one snapshot ebr made; one that does not exist (never made, or gone) is not an error. */
async function destroySnapshot(run: CommandRunner, snap: string): Promise<void> {
  if (!ebrSnapshot.test(snap)) {
    throw new EbrError('snapshot', `refusing to destroy ${snap}: it is not a snapshot named like the ones ebr makes (dataset@ebr-…)`, { context: { path: snap } });
  }
  const r = await run('zfs', ['destroy', snap]);
  if (r.exitCode === 0) return;
  const out = `${r.stderr}\n${r.stdout}`;
  if (/could not find any snapshots|does not exist|dataset does not exist/i.test(out)) return;
  if (r.exitCode === 127) throw missingCommand(tool, 'zfs', { path: snap });
  throw new EbrError('snapshot', `zfs destroy ${snap} failed (exit ${r.exitCode}): ${lastLines(out)}`, {
    hint: 'a hold or a clone keeps it (zfs holds / zfs list -t all -o name,origin); remove that, then run any ebr command again',
    context: { phase: 'release', path: snap, command: `zfs destroy ${snap}` },
  });
}
