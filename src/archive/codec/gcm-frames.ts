/**
 * A stream encrypted with AES-256-GCM in frames, so it can be written and read in constant memory and
 * a damaged byte is caught within one frame:
 *
 *   header   "EBRGCM01" ‖ frameBytes (u32 BE) ‖ nonce (16 random bytes)          28 bytes
 *   frame i  AES-256-GCM(plaintext i) ‖ tag (16)    plaintext: frameBytes, the last one fewer (maybe 0)
 *
 * Each stream has its own key and IV base, HKDF-SHA256(data key, salt = nonce, "ebr aes-256-gcm
 * stream v1"); frame i's IV is the IV base with i xored into its last 8 bytes, so no IV repeats under
 * a key. Every frame authenticates, as additional data, the header, its counter and a final-frame
 * flag: a frame moved, dropped, repeated or taken from another stream fails, and so does a stream cut
 * at a frame boundary (its last frame was not written as final). Only the last frame is shorter than
 * frameBytes, so a reader needs no lengths: full frames are not final, the remainder is.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { throwIfAborted } from '../../errors.js';
import { ByteQueue } from './byte-queue.js';
import { damagedStream } from './codec-errors.js';
import type { Stage } from './stage.js';

const magic = Buffer.from('EBRGCM01');
const headerBytes = magic.length + 4 + 16;
const tagBytes = 16;
/** Frames are held whole on both sides; a header asking for more than this is damage. */
export const maxFrameBytes = 16 << 20;
export const minFrameBytes = 1 << 10;

interface StreamKeys {
  key: Buffer;
  ivBase: Buffer;
  header: Buffer;
}

function streamKeys(dataKey: Buffer, header: Buffer): StreamKeys {
  const nonce = header.subarray(magic.length + 4);
  const okm = Buffer.from(hkdfSync('sha256', dataKey, nonce, 'ebr aes-256-gcm stream v1', 44));
  return { key: okm.subarray(0, 32), ivBase: okm.subarray(32), header };
}

function ivOf(k: StreamKeys, counter: number): Buffer {
  const iv = Buffer.from(k.ivBase);
  iv.writeBigUInt64BE(iv.readBigUInt64BE(4) ^ BigInt(counter), 4);
  return iv;
}

function aadOf(k: StreamKeys, counter: number, final: boolean): Buffer {
  const a = Buffer.allocUnsafe(k.header.length + 9);
  k.header.copy(a);
  a.writeBigUInt64BE(BigInt(counter), k.header.length);
  a[k.header.length + 8] = final ? 1 : 0;
  return a;
}

/** An encrypting step: the header at the first byte out, a frame per `frameBytes` taken, the final frame at end(). */
export function gcmEncryptStage(next: Stage, dataKey: Buffer, frameBytes: number): Stage {
  const header = Buffer.alloc(headerBytes);
  magic.copy(header);
  header.writeUInt32BE(frameBytes, magic.length);
  randomBytes(16).copy(header, magic.length + 4);
  const keys = streamKeys(dataKey, header);
  const frame = Buffer.allocUnsafe(frameBytes);
  let fill = 0;
  let counter = 0;

  async function emit(plain: Buffer, final: boolean): Promise<void> {
    // Per stream key, 2^32 frames of 1 MiB are 4 PiB: far past any stream, and within GCM's limits.
    if (counter >= 2 ** 32) throw new Error('an encrypted stream of 2^32 frames');
    const c = createCipheriv('aes-256-gcm', keys.key, ivOf(keys, counter));
    c.setAAD(aadOf(keys, counter, final));
    const body = c.update(plain);
    c.final();
    const out = counter === 0 ? Buffer.concat([header, body, c.getAuthTag()]) : Buffer.concat([body, c.getAuthTag()]);
    counter++;
    await next.write(out);
  }

  return {
    async write(buf) {
      let at = 0;
      while (at < buf.length) {
        const n = buf.copy(frame, fill, at, Math.min(buf.length, at + frameBytes - fill));
        fill += n;
        at += n;
        if (fill === frameBytes) {
          await emit(frame, false);
          fill = 0;
        }
      }
    },
    async end() {
      await emit(frame.subarray(0, fill), true);
      await next.end();
    },
  };
}

/** The plaintext of an encrypted stream written by gcmEncryptStage with `dataKey`; damage throws EbrError('archive') at its frame. */
export async function* gcmDecryptFrames(source: AsyncIterable<Buffer>, dataKey: Buffer, frameBytes: number, label: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const q = new ByteQueue();
  const stride = frameBytes + tagBytes;
  let keys: StreamKeys | undefined;
  let counter = 0;
  const storedAt = (i: number) => headerBytes + i * stride;
  const where = (i: number) => `frame ${i} (stored bytes from ${storedAt(i)}, original bytes from ${i * frameBytes})`;

  function open(body: Buffer, final: boolean): Buffer {
    const k = keys!;
    const d = createDecipheriv('aes-256-gcm', k.key, ivOf(k, counter));
    d.setAAD(aadOf(k, counter, final));
    d.setAuthTag(body.subarray(body.length - tagBytes));
    const plain = d.update(body.subarray(0, body.length - tagBytes));
    try {
      d.final();
    } catch (err) {
      throw damagedStream(label, `encrypted ${where(counter)} does not authenticate: the stream was damaged, cut short, reordered or changed there`, { frame: counter, storedOffset: storedAt(counter), originalOffset: counter * frameBytes }, err);
    }
    counter++;
    return plain;
  }

  function readHeader(): void {
    const h = q.shift(headerBytes);
    if (!h.subarray(0, magic.length).equals(magic)) throw damagedStream(label, 'does not start with the header of an ebr encrypted stream (EBRGCM01)', { storedOffset: 0 });
    const fb = h.readUInt32BE(magic.length);
    if (fb !== frameBytes) throw damagedStream(label, `its header says frames of ${fb} bytes, the manifest ${frameBytes}`, { storedOffset: magic.length });
    keys = streamKeys(dataKey, h);
  }

  for await (const chunk of source) {
    throwIfAborted(signal, { path: label });
    q.push(chunk);
    if (!keys) {
      if (q.length < headerBytes) continue;
      readHeader();
    }
    // A full frame is never the final one; the final frame is whatever is left at the end.
    while (q.length >= stride) {
      const plain = open(q.shift(stride), false);
      if (plain.length > 0) yield plain;
    }
  }
  if (!keys) throw damagedStream(label, `the encrypted stream is cut short: ${q.length} bytes, not even its ${headerBytes}-byte header`, { storedOffset: 0 });
  if (q.length < tagBytes) {
    const cut = q.length === 0 ? `before ${where(counter)}: the final frame is missing` : `inside ${where(counter)}, the final frame`;
    throw damagedStream(label, `the encrypted stream is cut short: it ends ${cut}`, { frame: counter, storedOffset: storedAt(counter) });
  }
  const plain = open(q.shift(q.length), true);
  if (plain.length > 0) yield plain;
}
