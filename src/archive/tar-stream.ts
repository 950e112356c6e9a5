/**
 * One space as a tar stream, written to any ByteSink and read back from any byte source (a file, an
 * object, a tape file, a decoder's output), in order and with constant memory. Member offsets are
 * offsets in the tar stream itself, before any compression or encryption.
 */
import { EbrError, throwIfAborted } from '../errors.js';
import type { MemberHeader, ReadMember, SpaceWriter } from './archive-target.js';
import type { ByteSink } from './byte-sink.js';
import { copyWithDigest } from './digest-copy.js';
import { block, decodeHeader, encodeHeader, padding } from './tar-format.js';

export const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * A space writer: members appended to `sink`, the end-of-archive blocks and `sink.close()` on close.
 * `stream` is the name the manifest records for this space's stream; `closed` runs after the sink closed.
 * `frame` is given every byte written outside member bodies (headers, padding, the end blocks).
 */
export function tarSpaceWriter(sink: ByteSink, stream: string, closed?: () => Promise<void>, frame?: (b: Buffer) => void): SpaceWriter {
  const framing = async (b: Buffer) => {
    frame?.(b);
    await sink.write(b);
  };
  return {
    async addFile(header, source, signal) {
      await framing(encodeHeader(header));
      const offset = sink.position;
      const d = await copyWithDigest(source, (b) => sink.write(b), header.size, signal, header.name);
      const pad = padding(d.size);
      if (pad) await framing(Buffer.alloc(pad));
      return { name: header.name, size: d.size, sha256: d.sha256, offset };
    },
    async addEntry(header) {
      await framing(encodeHeader({ ...header, size: 0 }));
      return { name: header.name, size: 0, sha256: emptySha256, offset: sink.position };
    },
    async close() {
      // Two zero blocks end a tar archive.
      await framing(Buffer.alloc(2 * block));
      const bytes = sink.position;
      await sink.close();
      await closed?.();
      return { file: stream, bytes };
    },
  };
}

/**
 * Reads bytes from an async source in exact amounts, keeping at most one source buffer beyond what
 * was asked. `take(n)` gives exactly n bytes or fewer at the end; `body(n)` streams n bytes.
 */
class ExactReader {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes consumed from the start of the stream. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.pending = r.value;
    return true;
  }

  /** Exactly n bytes, or fewer at the end; copies only a header that straddles two source buffers. */
  async take(n: number): Promise<Buffer> {
    if (this.pending.length >= n) {
      const out = this.pending.subarray(0, n);
      this.pending = this.pending.subarray(n);
      this.position += n;
      return out;
    }
    const parts: Buffer[] = [this.pending];
    let have = this.pending.length;
    this.pending = Buffer.alloc(0);
    while (have < n && (await this.fill())) {
      const piece = this.pending.subarray(0, n - have);
      this.pending = this.pending.subarray(piece.length);
      parts.push(piece);
      have += piece.length;
    }
    this.position += have;
    return Buffer.concat(parts, have);
  }

  /** Up to `n` bytes in the pieces the source gave; fewer only at the end of the source. */
  async *body(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) return;
      const piece = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(piece.length);
      this.position += piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  async skip(n: number): Promise<number> {
    let skipped = 0;
    for await (const piece of this.body(n)) skipped += piece.length;
    return skipped;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/**
 * The members of one tar stream, in order, the source read to its end after the last. A member's body
 * must be read to its end, or not at all, before the next member is asked for (what is left of it is skipped). `label` names the stream in
 * errors (a path, an object key, a tape file). `frame` is given every byte outside member bodies, as the writer gave it.
 */
export async function* readTarStream(source: AsyncIterable<Buffer>, label: string, signal: AbortSignal, frame?: (b: Buffer) => void): AsyncGenerator<ReadMember> {
  const r = new ExactReader(source);
  const framed = (b: Buffer) => {
    frame?.(b);
    return b;
  };
  try {
    for (;;) {
      throwIfAborted(signal, { path: label });
      const at = r.position;
      let head = framed(await r.take(block));
      if (head.length < block) throw new EbrError('archive', `${label} ends in the middle of a member header at byte ${at}`, { context: { path: label } });
      let decoded;
      for (;;) {
        try {
          decoded = decodeHeader(head);
        } catch (err) {
          throw new EbrError('archive', `${label}: damaged tar header at byte ${at}: ${(err as Error).message}`, { context: { path: label }, cause: err });
        }
        if (decoded === null || !('needPax' in decoded)) break;
        const more = framed(await r.take(decoded.needPax - head.length));
        if (more.length < decoded.needPax - head.length) throw new EbrError('archive', `${label} ends in the middle of a member header at byte ${at}`, { context: { path: label } });
        head = Buffer.concat([head, more]);
      }
      if (decoded === null) {
        // Read to the end of the source: the second end block, and whatever a decoder still has to check
        // (an encrypted stream's last frame is authenticated only when it is read).
        while (framed(await r.take(1 << 20)).length > 0);
        return;
      }
      const { header } = decoded;
      const size = header.type === 'file' ? header.size : 0;
      const start = r.position;
      let read = 0;
      async function* body(): AsyncGenerator<Buffer> {
        for await (const piece of r.body(size - read)) {
          read += piece.length;
          yield piece;
        }
        if (read < size) throw new EbrError('archive', `${label} is truncated: a member ends at byte ${start + read}, ${size - read} bytes short`, { context: { path: label } });
      }
      yield { header, body: body() };
      // Whatever the consumer left of the body, and the padding after it.
      const rest = size - read;
      if (rest > 0 && (await r.skip(rest)) < rest) throw new EbrError('archive', `${label} is truncated: a member ends before byte ${start + size}`, { context: { path: label } });
      read = size;
      const pad = padding(size);
      if (pad && framed(await r.take(pad)).length < pad) throw new EbrError('archive', `${label} is truncated after the member at byte ${start}`, { context: { path: label } });
    }
  } finally {
    await r.close();
  }
}

export type { MemberHeader };
