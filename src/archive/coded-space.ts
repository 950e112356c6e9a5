/**
 * A space stream as tar-based targets store it: tar, then the instance's codec (compression,
 * encryption), then the medium. The stored bytes' digest is kept at write and checked at read, so a
 * damaged stream is named as such before any member is believed.
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
  sha256: string;
}

/** A space writer over `raw` (the medium's sink) through `codec`; close() also gives the stored bytes' size and digest. */
export function codedSpaceWriter(raw: ByteSink, stream: string, codec: Codec = identityCodec): SpaceWriter {
  const stored = digestingSink(raw);
  const inner = tarSpaceWriter(codec.wrapSink(stored), stream);
  return {
    // A codec may keep its input (a compressor's window, an encryption frame being filled).
    takesTransient: codec === identityCodec && raw.releasesOnNextWrite === true,
    addFile: (h, source, signal) => inner.addFile(h, source, signal),
    addEntry: (h) => inner.addEntry(h),
    async close() {
      const closed = await inner.close();
      return { ...closed, stored: { bytes: stored.position, sha256: stored.sha256() } };
    },
  };
}

/**
 * The members of a stored space stream. When `expected` is given (from the manifest), the stored bytes
 * are digested on the way and compared at the end of the stream: a mismatch throws even if every
 * member's own digest matched (a stream with bytes appended, or a damaged tail).
 */
export async function* codedSpaceMembers(raw: AsyncIterable<Buffer>, label: string, signal: AbortSignal, codec: Codec = identityCodec, expected?: StoredStream): AsyncGenerator<ReadMember> {
  const hash = createHash('sha256');
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const b of raw) {
      hash.update(b);
      bytes += b.length;
      yield b;
    }
  }
  yield* readTarStream(codec.decode(counted(), label, signal), label, signal);
  if (!expected) return;
  const sha256 = hash.digest('hex');
  if (bytes !== expected.bytes || sha256 !== expected.sha256) {
    throw new EbrError('archive', `${label} is not the stream the backup stored: ${bytes} bytes with sha256 ${sha256.slice(0, 12)}…, the manifest records ${expected.bytes} bytes with ${expected.sha256.slice(0, 12)}…`, {
      hint: 'the archive was changed or damaged after the backup; restore another backup (`ebr list`) or its copy',
      context: { path: label },
    });
  }
}

/** How to read one space of a manifest back: its codec, and the stored stream and placement it recorded. */
export function spaceReadOptions(space: ManifestSpace | undefined, codec: Codec): ReadSpaceOptions {
  return { codec, ...(space?.stored ? { stored: space.stored } : {}), ...(space?.placement ? { placement: space.placement } : {}) };
}
