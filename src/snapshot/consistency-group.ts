/**
 * Consistency groups: every chunk of an instance is frozen inside the same window, whichever volume it
 * lies on. A provider says which volumes it can freeze; a file chunk on any other volume is an error
 * that names the chunk and the volume — unless `snapshot.copyFallback` lists it, and then it is copied
 * byte by byte inside the same window (the window then grows with those files' size, and only theirs).
 */
import os from 'node:os';
import path from 'node:path';
import { EbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Volume } from '../model.js';
import { copyBytes } from './copy-provider.js';
import type { ResourceJournal, Snapshot, SnapshotRequest, SnapshotResource } from './snapshot-provider.js';
import { takeStaged } from './staging.js';
import { realPathOf, volumeOf } from './volumes.js';

/**
 * Entries of `snapshot.copyFallback`:
 * - an absolute path or glob (`/srv/ext4/**`, `/srv/ext4`): matched against the chunk's path; a plain
 *   path also covers everything under it;
 * - `space:NAME`: every chunk of that space;
 * - anything else: a glob over the chunk's name in the archive (`pg_tblspc/**`, `audit.db`).
 * `*` and `?` stay inside one path segment, `**` crosses segments.
 */
export type ChunkMatcher = (chunk: Chunk) => boolean;

export function copyFallbackMatcher(raw: unknown, provider: string): ChunkMatcher {
  if (raw === undefined || raw === null) return () => false;
  const entries = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(entries) || entries.some((e) => typeof e !== 'string' || e.length === 0)) {
    throw new EbrError('config', `snapshot.copyFallback must be a list of paths, globs or space:NAME entries, not ${JSON.stringify(raw)}`, {
      hint: `for example: snapshot: { provider: ${provider}, copyFallback: ['/srv/ext4/tablespace/**', 'space:audit'] }`,
    });
  }
  const tests = (entries as string[]).map((e): ChunkMatcher => {
    if (e.startsWith('space:')) {
      const space = e.slice('space:'.length);
      return (c) => c.space === space;
    }
    if (path.isAbsolute(e)) {
      const re = globToRegExp(path.normalize(e).replace(/\/$/, ''));
      const underIt = /[*?[]/.test(e) ? undefined : path.normalize(e).replace(/\/$/, '') + '/';
      return (c) => {
        const candidates = new Set([c.path, realPathOf(c.path)]);
        for (const p of candidates) if (re.test(p) || (underIt !== undefined && p.startsWith(underIt))) return true;
        return false;
      };
    }
    const re = globToRegExp(e);
    return (c) => re.test(c.name);
  });
  return (c) => tests.some((t) => t(c));
}

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a trailing `**` matches the rest.
        if (glob[i + 2] === '/') {
          re += '(?:.*/)?';
          i += 2;
        } else {
          re += '.*';
          i += 1;
        }
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

export interface FrozenChunk {
  chunk: Chunk;
  volume: Volume;
}

/** Where each chunk's frozen bytes will come from. */
export interface Placement {
  /** On a volume the provider freezes. */
  frozen: FrozenChunk[];
  /** Files on another volume that copyFallback allows: byte-copied inside the window. */
  copied: Chunk[];
  /** Directories and symlinks on another volume: they carry no data, so they are read live. */
  live: Chunk[];
}

/**
 * Places every chunk. `cannotFreeze` returns why the provider cannot freeze a volume, or undefined
 * when it can. Throws one error that lists every file chunk that has nowhere to go.
 */
export function placeChunks(
  provider: string,
  chunks: Chunk[],
  mounts: Volume[],
  cannotFreeze: (volume: Volume) => string | undefined,
  copyAllowed: ChunkMatcher,
): Placement {
  const placement: Placement = { frozen: [], copied: [], live: [] };
  const refused: Array<{ chunk: Chunk; volume: Volume; why: string }> = [];
  const verdicts = new Map<Volume, string | undefined>();
  for (const chunk of chunks) {
    const volume = volumeOf(chunk.path, mounts);
    if (!verdicts.has(volume)) verdicts.set(volume, cannotFreeze(volume));
    const why = verdicts.get(volume);
    if (why === undefined) placement.frozen.push({ chunk, volume });
    else if (chunk.type !== 'file') placement.live.push(chunk);
    else if (copyAllowed(chunk)) placement.copied.push(chunk);
    else refused.push({ chunk, volume, why });
  }
  if (refused.length > 0) {
    const shown = refused.slice(0, 5).map(({ chunk, volume, why }) => `chunk ${chunk.name} of space ${chunk.space} (${chunk.path}) lies on ${describeVolume(volume)}, which the ${provider} provider cannot snapshot: ${why}`);
    const more = refused.length > 5 ? `; and ${refused.length - 5} more chunks` : '';
    const first = refused[0]!;
    throw new EbrError('snapshot', `${shown.join('; ')}${more}`, {
      hint: `move these files onto a volume the ${provider} provider can snapshot, or allow a byte copy inside the window for them with snapshot.copyFallback (e.g. copyFallback: ['${first.volume.mountPoint}/**'] or ['space:${first.chunk.space}'])`,
      context: { phase: 'check-snapshot', space: first.chunk.space, path: first.chunk.path, volume: first.volume.mountPoint, fsType: first.volume.fsType, device: first.volume.device },
    });
  }
  return placement;
}

export function describeVolume(v: Volume): string {
  return `the ${v.fsType} volume ${v.device} mounted at ${v.mountPoint}`;
}

/**
 * Copies the fallback chunks into a staging directory inside the window; resources are journaled
 * under the calling provider's name (kind `staging-dir`) so its removeLeftover cleans them too.
 */
export async function copyInWindow(provider: string, request: SnapshotRequest, chunks: Chunk[], staging: string | undefined, signal: AbortSignal): Promise<Snapshot | undefined> {
  if (chunks.length === 0) return undefined;
  const dir = path.join(staging ?? path.join(os.tmpdir(), 'ebr-staging'), `${request.backupId}-copy-fallback`);
  return takeStaged(provider, { ...request, chunks }, () => dir, copyBytes, signal);
}

/**
 * The take every volume provider shares: freeze the volumes, then byte-copy the chunks the group lets
 * be copied, inside the same window; on any failure, release whatever was made so far.
 */
export async function freezeGroup(o: {
  provider: string;
  request: SnapshotRequest;
  copied: Chunk[];
  staging: string | undefined;
  signal: AbortSignal;
  steps: Record<string, number>;
  snapshot: Snapshot;
  setFallback: (fallback: Snapshot | undefined) => void;
  freeze: () => Promise<void>;
}): Promise<Snapshot> {
  try {
    throwIfAborted(o.signal, { phase: 'acquire' });
    await o.freeze();
    const c0 = performance.now();
    const fallback = await copyInWindow(o.provider, o.request, o.copied, o.staging, o.signal);
    o.setFallback(fallback);
    if (fallback) o.steps['copy-fallback'] = performance.now() - c0;
    return o.snapshot;
  } catch (err) {
    await o.snapshot.release().catch(() => undefined);
    throw err;
  }
}

/**
 * The release every volume provider shares: the copy fallback first, then each snapshot it made, newest
 * first, each journaled as removed once gone. Every step is tried; the first error is thrown at the end.
 */
export async function releaseNewestFirst<T>(
  fallback: Snapshot | undefined,
  made: T[],
  remove: (item: T) => Promise<void>,
  resourceOf: (item: T) => SnapshotResource,
  journal: ResourceJournal,
): Promise<void> {
  const errors: unknown[] = [];
  if (fallback) await fallback.release().catch((e) => errors.push(e));
  for (const item of made.splice(0).reverse()) {
    try {
      await remove(item);
      journal.removed(resourceOf(item));
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}
