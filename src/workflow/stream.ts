/**
 * The stream phase: every space's chunks, read from the frozen copy, into one archive stream per
 * space, digests computed on the way. Spaces run a few at a time — two readers keep this disk busier
 * than one — and memory stays at a few buffers per stream whatever the size. The first failure stops
 * every stream of the backup, and the phase ends only when all of them have stopped: nothing reads,
 * writes or holds a file once it has returned or thrown.
 *
 * The I/O policy (ioLimitMBps, ioPriority; docs/io-policy.md) is the backup's, not each stream's: one
 * token bucket for every read of the frozen copy, and the I/O class of every thread of this process
 * for as long as the phase runs.
 */
import { existsSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ArchiveWriter, ClosedSpace, MemberHeader } from '../archive/archive-target.js';
import type { Codec } from '../archive/codec.js';
import type { ManifestMember, ManifestSpace } from '../archive/manifest.js';
import { readFileChunks, readFileReusing } from '../archive/digest-copy.js';
import { BlockHasher, defaultBlockDigest, encodeBlocks, hashingBlocks } from '../archive/block-digests.js';
import { TargetWriteError } from '../archive/file-sink.js';
import { EbrError, asEbrError, throwIfAborted } from '../errors.js';
import type { Chunk, Space } from '../model.js';
import type { Snapshot } from '../snapshot/snapshot-provider.js';
import { SmallFilePrefetch } from './small-file-prefetch.js';
import { memberKey, streamChangedBlocks, type BlockBase } from './stream-blocks.js';
import { targetWriteFailure } from './target-space.js';
import { countedBytes, progressMeter, type ProgressListener } from './progress.js';
import { RateLimiter, type Clock } from '../util/rate-limit.js';
import { applyIoPriority, type IoPriority } from '../util/io-priority.js';

export interface StreamResult {
  spaces: ManifestSpace[];
  members: ManifestMember[];
  bytes: number;
  /** Chunks that were gone from the frozen copy and left out (only when the adapter allows it). */
  vanished: string[];
  /** What the I/O policy did: how often the rate limit held the reads back, and which threads got the class. */
  io: StreamIo;
  /** An incremental's blocks: stored in this backup, and in all the files compared with the parent. */
  blocks?: { changed: number; total: number };
}

export interface StreamIo {
  limitMBps?: number;
  /** Reads held back by the limit, and for how long in all (ms, as asked of the clock). */
  waits: number;
  waitedMs: number;
  /** Bytes that went through the limit (all the bytes streamed, when it is set). */
  limitedBytes: number;
  priority: IoPriority;
  /** Threads of this process set to the class. */
  threads: number;
  /** The CPU niceness those threads had while streaming (root only: only root can undo it). */
  nice?: number;
  /** Why the priority could not be set (the backup read at the priority it had). */
  warning?: string;
}

export interface IoPolicy {
  /** Bytes read from the frozen copy per second (10^6 bytes per MB), all streams of the backup together; absent: unlimited. */
  limitMBps?: number;
  /** The I/O class of this process's threads while streaming; absent: normal. */
  priority?: IoPriority;
  /** For tests: the limiter's clock. */
  clock?: Clock;
}

export async function streamSpaces(o: {
  spaces: Space[];
  snapshot: Snapshot;
  writer: ArchiveWriter;
  /** How the streams are stored (compression, encryption); as they are when absent. */
  codec?: Codec;
  signal: AbortSignal;
  parallel?: number;
  /** Chunk files missing from the frozen copy are left out (capabilities.chunksMayVanish) instead of failing. */
  mayVanish?: boolean;
  onProgress?: ProgressListener;
  context: { instance: string; backupId: string };
  io?: IoPolicy;
  /** Bytes per block of the block digests recorded for every file; absent or 0: none. */
  blockSize?: number;
  /** An incremental or differential backup: the backup whose blocks are compared (its block size is used). */
  base?: BlockBase;
}): Promise<StreamResult> {
  // Before the first stat: those run on the threadpool too.
  const priority = await applyIoPriority(o.io?.priority ?? 'normal');
  try {
    const r = await streamAll(o);
    return { ...r, io: { ...r.io, priority: priority.priority, threads: priority.threads, ...(priority.nice !== undefined ? { nice: priority.nice } : {}), ...(priority.error ? { warning: priority.error } : {}) } };
  } finally {
    await priority.restore().catch(() => undefined);
  }
}

async function streamAll(o: Parameters<typeof streamSpaces>[0]): Promise<StreamResult> {
  const limitMBps = o.io?.limitMBps;
  const limiter = limitMBps !== undefined ? new RateLimiter(limitMBps * 1e6, undefined, o.io?.clock) : undefined;
  // Sizes come from the frozen copy: the live files may have moved on since discovery.
  const sizes = new Map<string, number>();
  const vanished = new Set<string>();
  for (const c of o.spaces.flatMap((s) => s.chunks)) {
    if (c.type !== 'file') continue;
    const st = await statFrozen(o.snapshot, c, o.context, o.mayVanish ?? false);
    if (st) sizes.set(c.name, c.offset !== undefined ? rangeSize(o.snapshot, c, st, o.context) : st.size);
    else vanished.add(c.name);
  }
  const bytesTotal = [...sizes.values()].reduce((a, b) => a + b, 0);
  const meter = progressMeter('stream', bytesTotal, o.onProgress);
  const results: Array<{ space: ManifestSpace; members: ManifestMember[] }> = [];
  const queue = [...o.spaces].sort((a, b) => total(b) - total(a));
  const blockSize = o.base?.blockSize ?? (o.blockSize || undefined);
  const blockDigest = o.base?.blockDigest ?? defaultBlockDigest;
  const blockStats = { changed: 0, total: 0 };

  // One signal for this phase's streams: the caller's (SIGINT/SIGTERM) or the first stream's failure.
  const stop = new AbortController();
  const onCallerAbort = () => stop.abort(o.signal.reason);
  if (o.signal.aborted) onCallerAbort();
  else o.signal.addEventListener('abort', onCallerAbort, { once: true });
  let failure: unknown;
  const worker = async () => {
    try {
      for (let space = queue.shift(); space && !stop.signal.aborted; space = queue.shift()) {
        results.push(await streamSpace(space, stop.signal));
      }
    } catch (err) {
      if (failure === undefined) {
        failure = err;
        stop.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.parallel ?? 2, o.spaces.length) }, worker));
  } finally {
    o.signal.removeEventListener('abort', onCallerAbort);
  }
  if (failure !== undefined) throw await explain(failure);
  throwIfAborted(stop.signal, { ...o.context, phase: 'stream' });
  meter.done();
  const order = new Map(o.spaces.map((s, i) => [s.name, i]));
  results.sort((a, b) => order.get(a.space.name)! - order.get(b.space.name)!);
  const io: StreamIo = { ...(limitMBps !== undefined ? { limitMBps } : {}), waits: limiter?.stats.waits ?? 0, waitedMs: Math.round(limiter?.stats.waitedMs ?? 0), limitedBytes: limiter?.stats.bytes ?? 0, priority: 'normal', threads: 0 };
  return { spaces: results.map((r) => r.space), members: results.flatMap((r) => r.members), bytes: meter.bytesDone, vanished: [...vanished], io, ...(o.base ? { blocks: blockStats } : {}) };

  /** The parent's member a file is compared with, block by block: a file there too, with blocks, at the same range. */
  function parentOf(c: Chunk) {
    const p = o.base?.members.get(memberKey(c.space, c.name));
    return p && p.type === 'file' && p.blocks && p.fileOffset === c.offset ? p : undefined;
  }

  function total(s: Space): number {
    return s.chunks.reduce((a, c) => a + (sizes.get(c.name) ?? 0), 0);
  }

  /**
   * A full, failing or vanished target is told as such, with the space left and the bytes still to go:
   * what the data needs beyond what reached the target (bytes read but still buffered are not written).
   */
  async function explain(err: unknown): Promise<unknown> {
    if (!(err instanceof EbrError) || !(err.cause instanceof TargetWriteError)) return err;
    const landed = o.writer.bytesWritten?.() ?? meter.bytesDone;
    return targetWriteFailure(err.cause, o.writer, Math.max(0, bytesTotal - landed), err.context, bytesTotal);
  }

  async function streamSpace(space: Space, signal: AbortSignal) {
    const ctx = { ...o.context, phase: 'stream', space: space.name };
    let out;
    try {
      out = await o.writer.openSpace(space.name, o.codec);
    } catch (err) {
      throw asEbrError(err, 'archive', ctx);
    }
    const members: ManifestMember[] = [];
    let closed: ClosedSpace;
    // A byte range is read by itself below: prefetching would read its whole file or device.
    // Nor a file compared with its parent block by block: it is read by streamChangedBlocks.
    const files = space.chunks.filter((c) => c.type === 'file' && c.offset === undefined && !vanished.has(c.name) && !parentOf(c));
    const prefetch = new SmallFilePrefetch(
      files.map((c) => ({ key: c.name, path: o.snapshot.pathOf(c), size: sizes.get(c.name)! })),
      undefined,
      undefined,
      signal,
    );
    prefetch.fill();
    // A chunk's manifest member: where it came from, where its body lies in the stream (named at close), and what the body is.
    const memberOf = (chunk: Chunk, header: MemberHeader, offset: number, body: Omit<ManifestMember, 'space' | 'name' | 'type' | 'path' | 'stream' | 'offset'>): ManifestMember => ({
      space: space.name,
      ...header,
      path: chunk.path,
      ...body,
      stream: '',
      offset,
      ...(chunk.offset !== undefined ? { fileOffset: chunk.offset } : {}),
      ...(chunk.details ? { details: chunk.details } : {}),
    });
    for (const chunk of space.chunks) {
      if (vanished.has(chunk.name)) continue;
      throwIfAborted(signal, ctx);
      const header: MemberHeader = {
        name: chunk.name,
        type: chunk.type,
        size: chunk.type === 'file' ? sizes.get(chunk.name)! : 0,
        ...pick(chunk),
      };
      try {
        if (chunk.type === 'file') {
          const limit = (read: AsyncIterable<Buffer>) => (limiter ? limiter.throttle(read, signal) : read);
          const throttle = (read: AsyncIterable<Buffer>) => faultGate(countedBytes(limit(read), (n) => meter.add(n, space.name)), signal);
          const parent = parentOf(chunk);
          if (o.base && parent) {
            const r = await streamChangedBlocks({ file: o.snapshot.pathOf(chunk), ...(chunk.offset !== undefined ? { start: chunk.offset } : {}), size: header.size, header, parent, base: o.base, out, throttle, limit, signal });
            blockStats.changed += r.changed;
            blockStats.total += r.total;
            members.push(memberOf(chunk, header, r.written.offset, r.member));
            continue;
          }
          // Only a file has bytes to read: a source made for a directory would hold it open, unread, for good.
          const whole = prefetch.take(chunk.name);
          const length = chunk.offset !== undefined ? header.size : undefined;
          const file = o.snapshot.pathOf(chunk);
          const read = whole ? once(whole) : out.takesTransient ? readFileReusing(file, signal, { ...(chunk.offset !== undefined ? { start: chunk.offset } : {}), ...(length !== undefined ? { length } : {}), ...streamRing }) : readFileChunks(file, signal, chunk.offset, length);
          // Each buffer waits for its bytes' turn: the file stream reads no further ahead than its buffer
          // meanwhile, and the prefetch of small files no more than its few files, so reads keep the rate.
          // The block digests are taken on the way, from the same buffers: every byte is still read once.
          const hasher = blockSize ? await BlockHasher.create(blockSize, blockDigest) : undefined;
          const written = await out.addFile(header, throttle(hasher ? hashingBlocks(read, hasher) : read), signal);
          const digests = hasher?.finish();
          if (o.base) {
            blockStats.changed += digests!.length;
            blockStats.total += digests!.length;
          }
          members.push(memberOf(chunk, header, written.offset, { sha256: written.sha256, size: written.size, ...(digests ? { blocks: encodeBlocks(digests) } : {}) }));
        } else {
          const written = await out.addEntry(header);
          members.push(memberOf(chunk, header, written.offset, { sha256: written.sha256, size: written.size }));
        }
      } catch (err) {
        // Stopped from outside or by a sibling's failure: say why, not just that a read was aborted.
        if (signal.aborted) throwIfAborted(signal, ctx);
        throw asEbrError(err, err instanceof TargetWriteError ? 'archive' : 'stream', { ...ctx, path: chunk.path });
      }
    }
    try {
      closed = await out.close();
    } catch (err) {
      throw asEbrError(err, 'archive', ctx);
    }
    const stream = closed.file;
    for (const m of members) m.stream = stream;
    return { space: { name: space.name, critical: space.critical, kind: space.kind, stream, ...(closed.stored ? { stored: closed.stored } : {}), ...(closed.placement ? { placement: closed.placement } : {}), ...(space.notes ? { notes: space.notes } : {}), ...(space.details ? { details: space.details } : {}) }, members };
  }
}

/**
 * How the stream reads a file for a target that takes reused buffers: 2 MiB chunks, eight in flight.
 * Deeper than restore's ring because a cold read of a frozen copy waits on the disk while the previous
 * chunks are hashed; 2 × 8 beat 4 × 2 and 4 × 4 in bench/backup-vs-pgbackrest's stream phase here.
 */
const streamRing = { chunkBytes: 2 << 20, ahead: 8 };

async function* once(whole: Promise<Buffer>): AsyncGenerator<Buffer> {
  const b = await whole;
  if (b.length > 0) yield b;
}

/**
 * Fault injection for the tests that kill ebr, fill its target or break its snapshot mid-stream:
 * EBR_FAULT_STREAM_GATE=FILE makes each file member wait, after its first buffer went to the archive,
 * until FILE exists (abortable). Unset, the source is passed through untouched. Never set it in production.
 */
function faultGate(source: AsyncIterable<Buffer>, signal: AbortSignal): AsyncIterable<Buffer> {
  const gate = process.env.EBR_FAULT_STREAM_GATE;
  if (!gate) return source;
  return (async function* () {
    let first = true;
    for await (const b of source) {
      yield b;
      if (first) {
        first = false;
        while (!existsSync(gate)) await sleep(20, undefined, { signal });
      }
    }
  })();
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

/**
 * A byte range is as long as discovery said: a file (or a copy provider's sparse copy) must reach its end;
 * a device's stat says nothing of its size, and a short one fails the read of exactly this many bytes.
 */
function rangeSize(snapshot: Snapshot, c: Chunk, st: Stats, context: Record<string, unknown>): number {
  const end = c.offset! + c.size;
  if (st.isFile() && st.size < end) {
    throw new EbrError('stream', `chunk ${c.name} of space ${c.space} is bytes ${c.offset}–${end - 1} of ${c.path}, but the frozen copy at ${snapshot.pathOf(c)} holds only ${st.size} bytes`, {
      hint: 'the file shrank between discovery and the snapshot, or the adapter listed a wrong offset or size; run the backup again',
      context: { ...context, phase: 'stream', space: c.space, path: c.path },
    });
  }
  return c.size;
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
