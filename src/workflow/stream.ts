/**
 * The stream phase: every space's chunks, read from the frozen copy, into one archive stream per
 * space, digests computed on the way. Spaces run a few at a time — two readers keep this disk busier
 * than one — and memory stays at a few buffers per stream whatever the size.
 */
import { stat } from 'node:fs/promises';
import type { ArchiveWriter, MemberHeader } from '../archive/archive-target.js';
import type { ManifestMember, ManifestSpace } from '../archive/manifest.js';
import { readFileChunks } from '../archive/digest-copy.js';
import { EbrError, asEbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Space } from '../model.js';
import type { Snapshot } from '../snapshot/snapshot-provider.js';
import { SmallFilePrefetch } from './small-file-prefetch.js';
import { countedBytes, progressMeter, type ProgressListener } from './progress.js';

export interface StreamResult {
  spaces: ManifestSpace[];
  members: ManifestMember[];
  bytes: number;
  /** Chunks that were gone from the frozen copy and left out (only when the adapter allows it). */
  vanished: string[];
}

export async function streamSpaces(o: {
  spaces: Space[];
  snapshot: Snapshot;
  writer: ArchiveWriter;
  signal: AbortSignal;
  parallel?: number;
  /** Chunk files missing from the frozen copy are left out (capabilities.chunksMayVanish) instead of failing. */
  mayVanish?: boolean;
  onProgress?: ProgressListener;
  context: { instance: string; backupId: string };
}): Promise<StreamResult> {
  // Sizes come from the frozen copy: the live files may have moved on since discovery.
  const sizes = new Map<string, number>();
  const vanished = new Set<string>();
  for (const c of o.spaces.flatMap((s) => s.chunks)) {
    if (c.type !== 'file') continue;
    const st = await statFrozen(o.snapshot, c, o.context, o.mayVanish ?? false);
    if (st) sizes.set(c.name, st.size);
    else vanished.add(c.name);
  }
  const meter = progressMeter('stream', [...sizes.values()].reduce((a, b) => a + b, 0), o.onProgress);
  const results: Array<{ space: ManifestSpace; members: ManifestMember[] }> = [];
  const queue = [...o.spaces].sort((a, b) => total(b) - total(a));
  const worker = async () => {
    for (let space = queue.shift(); space; space = queue.shift()) {
      results.push(await streamSpace(space));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.parallel ?? 2, o.spaces.length) }, worker));
  meter.done();
  const order = new Map(o.spaces.map((s, i) => [s.name, i]));
  results.sort((a, b) => order.get(a.space.name)! - order.get(b.space.name)!);
  return { spaces: results.map((r) => r.space), members: results.flatMap((r) => r.members), bytes: meter.bytesDone, vanished: [...vanished] };

  function total(s: Space): number {
    return s.chunks.reduce((a, c) => a + (sizes.get(c.name) ?? 0), 0);
  }

  async function streamSpace(space: Space) {
    const out = await o.writer.openSpace(space.name);
    const members: ManifestMember[] = [];
    let stream = '';
    const files = space.chunks.filter((c) => c.type === 'file' && !vanished.has(c.name));
    const prefetch = new SmallFilePrefetch(files.map((c) => ({ key: c.name, path: o.snapshot.pathOf(c), size: sizes.get(c.name)! })));
    prefetch.fill();
    for (const chunk of space.chunks) {
      if (vanished.has(chunk.name)) continue;
      throwIfAborted(o.signal, { ...o.context, phase: 'stream', space: space.name });
      const header: MemberHeader = {
        name: chunk.name,
        type: chunk.type,
        size: chunk.type === 'file' ? sizes.get(chunk.name)! : 0,
        ...pick(chunk),
      };
      try {
        const whole = chunk.type === 'file' ? prefetch.take(chunk.name) : undefined;
        const source = whole ? once(whole) : readFileChunks(o.snapshot.pathOf(chunk), o.signal);
        const written = chunk.type === 'file' ? await out.addFile(header, countedBytes(source, (n) => meter.add(n, space.name)), o.signal) : await out.addEntry(header);
        members.push({ space: space.name, ...header, path: chunk.path, sha256: written.sha256, size: written.size, stream: '', offset: written.offset, ...(chunk.details ? { details: chunk.details } : {}) });
      } catch (err) {
        throw asEbrError(err, 'stream', { ...o.context, phase: 'stream', space: space.name, path: chunk.path });
      }
    }
    ({ file: stream } = await out.close());
    for (const m of members) m.stream = stream;
    return { space: { name: space.name, critical: space.critical, kind: space.kind, stream, ...(space.notes ? { notes: space.notes } : {}), ...(space.details ? { details: space.details } : {}) }, members };
  }
}

async function* once(whole: Promise<Buffer>): AsyncGenerator<Buffer> {
  const b = await whole;
  if (b.length > 0) yield b;
}

function pick(c: Chunk): Partial<MemberHeader> {
  return {
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    ...(c.uid !== undefined ? { uid: c.uid } : {}),
    ...(c.gid !== undefined ? { gid: c.gid } : {}),
    ...(c.mtimeMs !== undefined ? { mtimeMs: c.mtimeMs } : {}),
    ...(c.linkTarget !== undefined ? { linkTarget: c.linkTarget } : {}),
  };
}

async function statFrozen(snapshot: Snapshot, c: Chunk, context: Record<string, unknown>, mayVanish: boolean) {
  const p = snapshot.pathOf(c);
  try {
    return await stat(p);
  } catch (err) {
    if (mayVanish && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EbrError('stream', `chunk ${c.name} of space ${c.space} is missing from the frozen copy at ${p}`, {
      hint: 'the file vanished between discovery and the snapshot; run the backup again',
      context: { ...context, phase: 'stream', space: c.space, path: p },
      cause: err,
    });
  }
}
