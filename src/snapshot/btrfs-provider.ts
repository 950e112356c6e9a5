/**
 * `btrfs`: one read-only snapshot (`btrfs subvolume snapshot -r`) of every subvolume that holds a
 * chunk, all taken inside one window. A snapshot costs a transaction commit, tens of milliseconds,
 * whatever the size of the data. Each chunk is then read at the same relative path inside its
 * subvolume's snapshot. Snapshots go inside the subvolume they freeze (`.ebr-snapshot-<backup>-<n>`),
 * or under `snapshot.dir` (a directory on the same btrfs filesystem), and are deleted at release — or
 * by the next ebr command when a crashed run left them, going by the journal and nothing else.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Volume } from '../model.js';
import { subvolumeOf, subvolumeRootInode } from './btrfs-subvolumes.js';
import { execaRunner, runChecked, type CommandRunner, type CommandTool } from './command-runner.js';
import { copyFallbackMatcher, freezeGroup, releaseNewestFirst, placeChunks, type Placement } from './consistency-group.js';
import type { Snapshot, SnapshotProvider, SnapshotResource, SnapshotSettings } from './snapshot-provider.js';
import { removeStagingDir } from './staging.js';
import { dropCacheMinBytes, dropCachedPages } from './page-cache.js';
import { readMounts, volumeOf } from './volumes.js';
import { timed } from './steps.js';

const tool: CommandTool = { provider: 'btrfs', packageOf: { btrfs: 'btrfs-progs', sync: 'coreutils' } };
const snapshotPrefix = '.ebr-snapshot-';

/** The keys of `snapshot:` with `provider: btrfs`. */
export const btrfsSettings = z
  .object({
    provider: z.string(),
    /** Where snapshots go instead of inside each subvolume: a directory on the same btrfs filesystem. */
    dir: z.string().refine((d) => path.isAbsolute(d), 'must be an absolute path').optional(),
    staging: z.string().optional(),
    copyFallback: z.unknown().optional(),
  })
  .strict();

export interface ProviderDeps {
  run?: CommandRunner;
  mounts?: () => Volume[];
}

interface Plan {
  placement: Placement;
  /** Chunk name → subvolume root and relative path, for frozen chunks. */
  places: Map<string, { root: string; relative: string }>;
  /** Distinct subvolume roots, sorted, so the n in a snapshot's name is stable. */
  roots: string[];
}

export function btrfsProvider(settings: SnapshotSettings, deps: ProviderDeps = {}): SnapshotProvider {
  const s = parseSettings(settings);
  const run = deps.run ?? execaRunner;
  const mounts = deps.mounts ?? (() => readMounts());
  const copyAllowed = copyFallbackMatcher(s.copyFallback, 'btrfs');
  const rootsByDir = new Map<string, string>();
  let planned: { chunks: Chunk[]; plan: Plan } | undefined;

  /** Resolves every chunk; reused by take when check already did it for the same chunk list. */
  const planFor = (chunks: Chunk[]): Plan => {
    if (planned?.chunks === chunks) return planned.plan;
    const placement = placeChunks('btrfs', chunks, mounts(), (v) => (v.fsType === 'btrfs' ? undefined : `it is ${v.fsType}, not btrfs`), copyAllowed);
    const places = new Map<string, { root: string; relative: string }>();
    for (const { chunk } of placement.frozen) places.set(chunk.name, subvolumeOf(chunk, rootsByDir));
    const roots = [...new Set([...places.values()].map((p) => p.root))].sort();
    const plan = { placement, places, roots };
    planned = { chunks, plan };
    return plan;
  };

  const destinationOf = (backupId: string, root: string, n: number) => path.join(s.dir ?? root, `${snapshotPrefix}${backupId}-${n}`);

  return {
    kind: 'btrfs',

    async check(request, signal) {
      const plan = planFor(request.chunks);
      const all = mounts();
      for (const [n, root] of plan.roots.entries()) {
        throwIfAborted(signal, { phase: 'check-snapshot', path: root });
        const shown = await runChecked(run, tool, ['btrfs', 'subvolume', 'show', root], { signal, context: { phase: 'check-snapshot', path: root } });
        const readOnly = /^\s*Flags:\s*.*readonly/m.test(shown.stdout);
        if (readOnly && !s.dir) {
          throw new EbrError('snapshot', `the btrfs subvolume ${root} is read-only, so its snapshot cannot be created inside it`, {
            hint: 'set snapshot.dir to a writable directory on the same btrfs filesystem',
            context: { phase: 'check-snapshot', path: root },
          });
        }
        if (s.dir) {
          const a = volumeOf(root, all);
          const b = volumeOf(path.join(s.dir, '.'), all);
          if (b.fsType !== 'btrfs' || a.device !== b.device) {
            throw new EbrError('snapshot', `snapshot.dir ${s.dir} is not on the btrfs filesystem of ${root} (${a.device}); a snapshot can only be made on its own filesystem`, {
              hint: `point snapshot.dir at a directory on ${a.device}, or remove it to keep snapshots inside each subvolume`,
              context: { phase: 'check-snapshot', path: s.dir },
            });
          }
        }
        const dest = destinationOf(request.backupId, root, n);
        if (existsSync(dest)) {
          throw new EbrError('snapshot', `${dest} already exists`, { hint: 'remove it (btrfs subvolume delete) if no backup is running', context: { phase: 'check-snapshot', path: dest } });
        }
      }
      // A snapshot commits the transaction and writes back the subvolume's dirty data first: flushing it
      // now, outside the window, keeps the window to what the database dirties in the meantime.
      const filesystems = new Map(plan.roots.map((root) => [volumeOf(root, all).device, root]));
      for (const root of filesystems.values()) {
        await runChecked(run, tool, ['sync', '--file-system', root], { signal, context: { phase: 'check-snapshot', path: root } });
      }
    },

    async take(request, signal) {
      const steps: Record<string, number> = {};
      const plan = timed(steps, 'resolve', () => planFor(request.chunks));
      // Everything journaled, made or not: release deletes whichever of them exists.
      const journaled: Array<{ resource: SnapshotResource; root: string }> = [];
      let fallback: Snapshot | undefined;
      const snapshot: Snapshot = {
        steps,
        pathOf(chunk) {
          const place = plan.places.get(chunk.name);
          if (place) {
            const n = plan.roots.indexOf(place.root);
            return path.join(destinationOf(request.backupId, place.root, n), place.relative);
          }
          return fallback ? fallback.pathOf(chunk) : chunk.path;
        },
        async release() {
          if (journaled.length > 0) {
            const big = plan.placement.frozen.filter(({ chunk }) => chunk.type === 'file' && chunk.size >= dropCacheMinBytes).map(({ chunk }) => snapshot.pathOf(chunk));
            await dropCachedPages(run, big);
          }
          await releaseNewestFirst(fallback, journaled, (j) => deleteSnapshot(run, j.resource.path), (j) => j.resource, request.journal);
        },
      };
      return freezeGroup({
        provider: 'btrfs',
        request,
        copied: plan.placement.copied,
        staging: s.staging,
        signal,
        steps,
        snapshot,
        setFallback: (f) => (fallback = f),
        freeze: async () => {
          // Every snapshot is journaled before any is made, then all are made at once: btrfs lets
          // concurrent snapshots share one transaction commit, which keeps the window short.
          const jobs = plan.roots.map((root, n) => {
            const resource: SnapshotResource = { provider: 'btrfs', kind: 'btrfs-snapshot', path: destinationOf(request.backupId, root, n), details: { subvolume: root } };
            request.journal.created(resource);
            journaled.push({ resource, root });
            return { resource, root };
          });
          const t0 = performance.now();
          const results = await Promise.allSettled(
            jobs.map(async (job) => {
              const s0 = performance.now();
              await runChecked(run, tool, ['btrfs', 'subvolume', 'snapshot', '-r', job.root, job.resource.path], { signal, context: { phase: 'acquire', path: job.root } });
              steps[`subvolume ${job.root}`] = performance.now() - s0;
            }),
          );
          steps.snapshots = performance.now() - t0;
          const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (failed) throw failed.reason;
        },
      });
    },

    async removeLeftover(resource) {
      if (resource.kind === 'staging-dir') return removeStagingDir(resource);
      if (resource.kind !== 'btrfs-snapshot') throw new Error(`the btrfs provider does not know resources of kind ${resource.kind}`);
      if (!path.basename(resource.path).startsWith(snapshotPrefix)) {
        throw new EbrError('snapshot', `refusing to delete ${resource.path}: it is not named like a snapshot ebr makes (${snapshotPrefix}…)`, { context: { path: resource.path } });
      }
      if (!existsSync(resource.path)) return; // the run died before the snapshot was made, or it is gone already
      await deleteSnapshot(run, resource.path);
    },
  };
}

async function deleteSnapshot(run: CommandRunner, p: string): Promise<void> {
  let st;
  try {
    st = statSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  // Only a subvolume root is ever deleted, so a wrong path can never take a plain directory with it.
  if (st.ino !== subvolumeRootInode || !st.isDirectory()) {
    throw new EbrError('snapshot', `refusing to delete ${p}: it is not a btrfs subvolume`, { context: { path: p } });
  }
  await runChecked(run, tool, ['btrfs', 'subvolume', 'delete', p], { context: { phase: 'release', path: p } });
}

function parseSettings(settings: SnapshotSettings) {
  const r = btrfsSettings.safeParse(settings);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new EbrError('config', `snapshot.${issue.path.join('.')}: ${issue.message}`, { hint: 'see the snapshot providers section of the README for the keys btrfs takes' });
  }
  return r.data;
}
