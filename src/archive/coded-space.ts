/**
 * A space stream as tar-based targets store it: tar, then the instance's codec (compression,
 * encryption), then the medium. The stored bytes' digest is kept at write and checked at read, so a
 * damaged stream is named as such before any member is believed.
 *
 * A stream stored as it is (no codec) records `frame` instead of `sha256`: the digest of every byte
 * outside the member bodies (headers, padding, the end blocks), each body being covered by its
 * member's own sha256. Together they cover every stored byte, and no byte is hashed twice: a second
 * sha256 over the whole stream cost a third of the stream phase's CPU (bench/backup-vs-pgbackrest).
 */
import { createHash } from 'node:crypto';
import { EbrError } from '../errors.js';
import type { ReadMember, ReadSpaceOptions, SpaceWriter } from './archive-target.js';
import type { ManifestSpace } from './manifest.js';
import { digestingSink, type ByteSink } from './byte-sink.js';
import { identityCodec, type Codec } from './codec.js';
import { readTarStream, tarSpaceWriter } from './tar-stream.js';

/** What a space stream looked like as stored: the manifest records it, verify and restore check it. */
export interface StoredStream {
  bytes: number;
  /** sha256 of every stored byte: streams through a codec (and every stream of backups made before `frame`). */
  sha256?: string;
  /** sha256 of the bytes outside member bodies: streams stored as they are (the bodies have their members' digests). */
  frame?: string;
}

/** A space writer over `raw` (the medium's sink) through `codec`; close() also gives the stored bytes' size and digest. */
export function codedSpaceWriter(raw: ByteSink, stream: string, codec: Codec = identityCodec): SpaceWriter {
  if (codec === identityCodec) return framedSpaceWriter(raw, stream);
  const stored = digestingSink(raw);
  const inner = tarSpaceWriter(codec.wrapSink(stored), stream);
  // No takesTransient: a codec may keep its input (a compressor's window, an encryption frame being filled).
  return {
    addFile: (h, source, signal) => inner.addFile(h, source, signal),
    addEntry: (h) => inner.addEntry(h),
    async close() {
      const closed = await inner.close();
      return { ...closed, stored: { bytes: stored.position, sha256: stored.sha256() } };
    },
  };
}

/** A stream stored as it is: tar straight to the medium, the frame digested on the way. */
function framedSpaceWriter(raw: ByteSink, stream: string): SpaceWriter {
  const frame = createHash('sha256');
  const inner = tarSpaceWriter(raw, stream, undefined, (b) => frame.update(b));
  return {
    takesTransient: raw.releasesOnNextWrite === true,
    addFile: (h, source, signal) => inner.addFile(h, source, signal),
    addEntry: (h) => inner.addEntry(h),
    async close() {
      const closed = await inner.close();
      return { ...closed, stored: { bytes: raw.position, frame: frame.digest('hex') } };
    },
  };
}

/**
 * The members of a stored space stream. When `expected` is given (from the manifest), the stored bytes
 * are digested on the way and compared at the end of the stream: a mismatch throws even if every
 * member's own digest matched (a stream with bytes appended, or a damaged tail).
 */
export async function* codedSpaceMembers(raw: AsyncIterable<Buffer>, label: string, signal: AbortSignal, codec: Codec = identityCodec, expected?: StoredStream): AsyncGenerator<ReadMember> {
  // A frame digest is of the tar stream itself: only a stream stored as it is has one.
  const framed = expected?.frame !== undefined && codec === identityCodec;
  const hash = expected && (expected.sha256 !== undefined || framed) ? createHash('sha256') : undefined;
  const whole = framed ? undefined : hash;
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const b of raw) {
      whole?.update(b);
      bytes += b.length;
      yield b;
    }
  }
  yield* readTarStream(codec.decode(counted(), label, signal), label, signal, framed ? (b) => hash!.update(b) : undefined);
  if (!expected) return;
  const want = framed ? expected.frame! : expected.sha256;
  const got = hash?.digest('hex');
  const what = framed ? 'outside its members' : 'sha256';
  if (bytes !== expected.bytes || got !== want) {
    const described = (d: string | undefined) => (d ? `${what} ${d.slice(0, 12)}…` : `no ${what} digest`);
    throw new EbrError('archive', `${label} is not the stream the backup stored: ${bytes} bytes with ${described(got)}, the manifest records ${expected.bytes} bytes with ${described(want)}`, {
      hint: 'the archive was changed or damaged after the backup; restore another backup (`ebr list`) or its copy',
      context: { path: label },
    });
  }
}

/** How to read one space of a manifest back: its codec, and the stored stream and placement it recorded. */
export function spaceReadOptions(space: ManifestSpace | undefined, codec: Codec): ReadSpaceOptions {
  return { codec, ...(space?.stored ? { stored: space.stored } : {}), ...(space?.placement ? { placement: space.placement } : {}) };
}
