/**
 * `lvm`: a snapshot of every logical volume that holds a chunk (`lvcreate --snapshot`; thin volumes get
 * a thin snapshot, others a classic one sized by `snapshot.size`). Creating it suspends the volume,
 * which freezes its filesystem, so the copy is clean. LVM cannot snapshot several volumes in one
 * command: they are made one after another inside the window. The snapshots are mounted read-only
 * after unblock (Snapshot.open), read there, and unmounted and removed (`lvremove`) at release, or by
 * the next run when a crashed one left them.
 */
import { readFileSync } from 'node:fs';
import { mkdir, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { EbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Volume } from '../model.js';
import type { ProviderDeps } from './btrfs-provider.js';
import { execaRunner, lastLines, missingCommand, runChecked, type CommandRunner, type CommandTool } from './command-runner.js';
import { copyFallbackMatcher, freezeGroup, releaseNewestFirst, placeChunks, type Placement } from './consistency-group.js';
import type { Snapshot, SnapshotProvider, SnapshotResource, SnapshotSettings } from './snapshot-provider.js';
import { removeStagingDir } from './staging.js';
import { readMounts, realPathOf, volumeOf } from './volumes.js';

const tool: CommandTool = { provider: 'lvm', packageOf: { lvs: 'lvm2', lvcreate: 'lvm2', lvremove: 'lvm2', mount: 'mount', umount: 'mount' } };
const snapPrefix = 'ebr-';

/** The keys of `snapshot:` with `provider: lvm`. */
export const lvmSettings = z
  .object({
    provider: z.string(),
    /** Size of a classic (non-thin) snapshot: `10%ORIGIN`, `20%FREE`, or an lvcreate size like `4G`. */
    size: z.string().regex(/^(\d+%(ORIGIN|FREE|VG|PVS)|\d+(\.\d+)?[bBsSkKmMgGtTpPeE]?)$/, 'a size like 10%ORIGIN or 4G').default('10%ORIGIN'),
    /** Where snapshots are mounted to be read. */
    mountDir: z.string().refine((d) => path.isAbsolute(d), 'must be an absolute path').optional(),
    staging: z.string().optional(),
    copyFallback: z.unknown().optional(),
  })
  .strict();

interface LogicalVolume {
  vg: string;
  lv: string;
  thin: boolean;
  /** The mount it is read through (its fsType and root decide how the snapshot is mounted and read). */
  volume: Volume;
}

interface Plan {
  placement: Placement;
  /** device → logical volume, for every volume that holds frozen chunks. */
  lvs: Map<string, LogicalVolume>;
}

export function lvmProvider(settings: SnapshotSettings, deps: ProviderDeps & { dmName?: (device: string) => string | undefined } = {}): SnapshotProvider {
  const parsed = lvmSettings.safeParse(settings);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new EbrError('config', `snapshot.${issue.path.join('.')}: ${issue.message}`, { hint: 'for example: snapshot: { provider: lvm, size: 10%ORIGIN }' });
  }
  const s = parsed.data;
  const run = deps.run ?? execaRunner;
  const mounts = deps.mounts ?? (() => readMounts());
  const dmName = deps.dmName ?? dmNameOfDevice;
  const copyAllowed = copyFallbackMatcher(s.copyFallback, 'lvm');
  const mountRoot = s.mountDir ?? path.join(os.tmpdir(), 'ebr-lvm');
  let planned: { chunks: Chunk[]; plan: Plan } | undefined;

  /** Asks lvs about every distinct device under the chunks; outside the window. */
  const planFor = async (chunks: Chunk[], signal: AbortSignal): Promise<Plan> => {
    if (planned?.chunks === chunks) return planned.plan;
    const all = mounts();
    const verdicts = new Map<string, LogicalVolume | string>();
    const probe = async (v: Volume) => {
      if (verdicts.has(v.device)) return;
      if (v.fsType === 'btrfs') {
        verdicts.set(v.device, 'it is btrfs: two mounted copies of one btrfs filesystem confuse its device scan; use the btrfs provider');
        return;
      }
      const name = lvNameOf(v.device, dmName);
      if (!name) {
        verdicts.set(v.device, 'it is not a device-mapper logical volume');
        return;
      }
      const argv = ['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'vg_name,lv_name,lv_attr,pool_lv', `${name.vg}/${name.lv}`];
      const r = await run(argv[0]!, argv.slice(1), { signal });
      if (r.exitCode === 127) throw missingCommand(tool, 'lvs', { phase: 'check-snapshot', command: argv.join(' ') });
      if (r.exitCode !== 0) {
        verdicts.set(v.device, `lvs does not know ${name.vg}/${name.lv}: ${lastLines(r.stderr)}`);
        return;
      }
      const row = parseLvs(r.stdout)[0];
      if (!row) {
        verdicts.set(v.device, `lvs reported nothing for ${name.vg}/${name.lv}`);
        return;
      }
      verdicts.set(v.device, { vg: row.vg_name, lv: row.lv_name, thin: row.lv_attr.startsWith('V') || row.pool_lv !== '', volume: v });
    };
    for (const c of chunks) await probe(volumeOf(c.path, all));
    const placement = placeChunks('lvm', chunks, all, (v) => {
      const verdict = verdicts.get(v.device);
      return typeof verdict === 'string' ? verdict : undefined;
    }, copyAllowed);
    const lvs = new Map<string, LogicalVolume>();
    for (const { volume } of placement.frozen) lvs.set(volume.device, verdicts.get(volume.device) as LogicalVolume);
    const plan = { placement, lvs };
    planned = { chunks, plan };
    return plan;
  };

  return {
    kind: 'lvm',

    async check(request, signal) {
      await planFor(request.chunks, signal);
    },

    async take(request, signal) {
      const steps: Record<string, number> = {};
      const r0 = performance.now();
      const plan = await planFor(request.chunks, signal);
      steps.resolve = performance.now() - r0;
      const made: Array<{ resource: SnapshotResource; lv: LogicalVolume; dir: string; mounted: boolean }> = [];
      let fallback: Snapshot | undefined;
      let opened = false;
      const lvList = [...plan.lvs.values()].sort((a, b) => `${a.vg}/${a.lv}`.localeCompare(`${b.vg}/${b.lv}`));
      const dirOf = new Map<LogicalVolume, string>();
      const frozenByName = new Map(plan.placement.frozen.map((f) => [f.chunk.name, f]));
      const snapshot: Snapshot = {
        steps,
        async open(openSignal) {
          for (const m of made) {
            throwIfAborted(openSignal, { phase: 'open-snapshot', path: m.dir });
            await mkdir(m.dir, { recursive: true, mode: 0o700 });
            const options = ['ro', ...(m.lv.volume.fsType === 'xfs' ? ['nouuid'] : [])].join(',');
            await runChecked(run, tool, ['mount', '-t', m.lv.volume.fsType, '-o', options, `/dev/${m.lv.vg}/${snapNameOf(m.resource)}`, m.dir], {
              signal: openSignal,
              context: { phase: 'open-snapshot', path: m.dir },
            });
            m.mounted = true;
          }
          opened = true;
        },
        pathOf(chunk) {
          const entry = frozenByName.get(chunk.name);
          if (!entry) return fallback ? fallback.pathOf(chunk) : chunk.path;
          if (!opened) throw new EbrError('internal', 'the LVM snapshot was read before Snapshot.open mounted it', { context: { path: chunk.path } });
          const lv = plan.lvs.get(entry.volume.device)!;
          return path.join(dirOf.get(lv)!, entry.volume.root, path.relative(entry.volume.mountPoint, realPathOf(chunk.path)));
        },
        async release() {
          await releaseNewestFirst(fallback, made, (m) => removeSnapshot(run, m.resource, m.mounted), (m) => m.resource, request.journal);
        },
      };
      return freezeGroup({
        provider: 'lvm',
        request,
        copied: plan.placement.copied,
        staging: s.staging,
        signal,
        steps,
        snapshot,
        setFallback: (f) => (fallback = f),
        freeze: async () => {
          for (const [n, lv] of lvList.entries()) {
            throwIfAborted(signal, { phase: 'acquire' });
            const name = `${snapPrefix}${request.backupId}-${n}`;
            const dir = path.join(mountRoot, name);
            dirOf.set(lv, dir);
            const resource: SnapshotResource = { provider: 'lvm', kind: 'lvm-snapshot', path: `${lv.vg}/${name}`, details: { origin: `${lv.vg}/${lv.lv}`, mountDir: dir, thin: lv.thin } };
            request.journal.created(resource);
            made.push({ resource, lv, dir, mounted: false });
            const argv = lv.thin
              ? ['lvcreate', '--snapshot', '--setactivationskip', 'n', '--name', name, `${lv.vg}/${lv.lv}`]
              : ['lvcreate', '--snapshot', s.size.includes('%') ? '--extents' : '--size', s.size, '--name', name, `${lv.vg}/${lv.lv}`];
            const t0 = performance.now();
            await runChecked(run, tool, argv, { signal, context: { phase: 'acquire', device: lv.volume.device } });
            steps[`lv ${lv.vg}/${lv.lv}`] = performance.now() - t0;
          }
        },
      });
    },

    async removeLeftover(resource) {
      if (resource.kind === 'staging-dir') return removeStagingDir(resource);
      if (resource.kind !== 'lvm-snapshot') throw new Error(`the lvm provider does not know resources of kind ${resource.kind}`);
      const dir = typeof resource.details?.mountDir === 'string' ? resource.details.mountDir : undefined;
      const mounted = dir !== undefined && mounts().some((m) => m.mountPoint === dir);
      await removeSnapshot(run, resource, mounted);
    },
  };
}

function snapNameOf(resource: SnapshotResource): string {
  return resource.path.slice(resource.path.indexOf('/') + 1);
}

/** Unmounts (when mounted) and removes one snapshot ebr made; one already gone is not an error. */
async function removeSnapshot(run: CommandRunner, resource: SnapshotResource, mounted: boolean): Promise<void> {
  const name = snapNameOf(resource);
  if (!/^[A-Za-z0-9+_.-]+\/[A-Za-z0-9+_.-]+$/.test(resource.path) || !name.startsWith(snapPrefix)) {
    throw new EbrError('snapshot', `refusing to remove ${resource.path}: it is not a snapshot named like the ones ebr makes (VG/${snapPrefix}…)`, { context: { path: resource.path } });
  }
  const dir = typeof resource.details?.mountDir === 'string' ? resource.details.mountDir : undefined;
  if (mounted && dir) await runChecked(run, tool, ['umount', dir], { context: { phase: 'release', path: dir } });
  const r = await run('lvremove', ['--yes', resource.path]);
  if (r.exitCode === 127) throw missingCommand(tool, 'lvremove', { path: resource.path });
  if (r.exitCode !== 0 && !/failed to find logical volume|not found/i.test(r.stderr)) {
    throw new EbrError('snapshot', `lvremove --yes ${resource.path} failed (exit ${r.exitCode}): ${lastLines(r.stderr)}`, {
      hint: 'check what holds it open (lvs, dmsetup info), then run any ebr command again to retry',
      context: { phase: 'release', path: resource.path, command: `lvremove --yes ${resource.path}` },
    });
  }
  if (dir) await rmdir(dir).catch(() => undefined);
}

/** VG and LV of a device-mapper device (/dev/mapper/vg-lv, /dev/dm-3, /dev/vg/lv), or undefined. */
export function lvNameOf(device: string, dmName: (device: string) => string | undefined): { vg: string; lv: string } | undefined {
  let name: string | undefined;
  if (device.startsWith('/dev/mapper/')) name = device.slice('/dev/mapper/'.length);
  else if (/^\/dev\/dm-\d+$/.test(device)) name = dmName(device);
  else {
    const m = /^\/dev\/([^/]+)\/([^/]+)$/.exec(device);
    if (m && m[1] !== 'mapper' && m[1] !== 'disk') return { vg: m[1]!, lv: m[2]! };
  }
  if (!name) return undefined;
  // Device-mapper names are VG-LV with every '-' inside a name doubled.
  const m = /^((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(name);
  if (!m) return undefined;
  return { vg: m[1]!.replace(/--/g, '-'), lv: m[2]!.replace(/--/g, '-') };
}

function dmNameOfDevice(device: string): string | undefined {
  try {
    return readFileSync(`/sys/block/${path.basename(device)}/dm/name`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function parseLvs(stdout: string): Array<{ vg_name: string; lv_name: string; lv_attr: string; pool_lv: string }> {
  try {
    const doc = JSON.parse(stdout) as { report?: Array<{ lv?: Array<{ vg_name: string; lv_name: string; lv_attr: string; pool_lv: string }> }> };
    return doc.report?.[0]?.lv ?? [];
  } catch {
    return [];
  }
}
