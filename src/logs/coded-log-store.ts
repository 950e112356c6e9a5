/**
 * Logs stored like the backups: compressed and encrypted by the instance's codec, on whichever store
 * holds them. Each log becomes one envelope — a header line naming its codec (with the data key only
 * wrapped), the sha256 and size of the original bytes, then the encoded bytes — so every log can be
 * read back alone, with nothing but the user's key. The inner store keeps the envelope as it keeps any
 * file (atomic, its own digest of the stored bytes); this layer checks the original bytes on the way out.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Codec, StoredCodec } from '../archive/codec.js';
import { copyWithDigest, digestFile, readFileChunks } from '../archive/digest-copy.js';
import { FileSink } from '../archive/file-sink.js';
import { EbrError } from '../errors.js';
import type { LogStore } from './log-store.js';

/** How logs are encoded and decoded: a fresh codec per log written, and the codec an envelope names. */
export interface LogCodecs {
  forWriting(): Promise<Codec>;
  forReading(stored: StoredCodec): Promise<Codec>;
}

const magic = 'EBRLOG1\n';

interface EnvelopeHeader {
  codec: StoredCodec;
  sha256: string;
  size: number;
}

/**
 * The store as the instance's settings say: logs written through `codecs` when it compresses or
 * encrypts (`codecs.encodes`), as they are otherwise; read back either way, whatever they were written
 * with (an instance that turned encryption on or off later still replays its older logs).
 */
export function codedLogStore(inner: LogStore, codecs: LogCodecs & { encodes: boolean }, context: { instance?: string; kind: string }): LogStore {
  const ctx = (name: string) => ({ ...(context.instance ? { instance: context.instance } : {}), member: `${context.kind}/${name}` });
  const never = new AbortController().signal;

  return {
    async put(name, sourceFile, signal) {
      if (!codecs.encodes) return inner.put(name, sourceFile, signal);
      const scratch = await mkdtemp(path.join(os.tmpdir(), 'ebr-log-'));
      try {
        const original = await digestFile(sourceFile, signal);
        const codec = await codecs.forWriting();
        const envelope = path.join(scratch, 'envelope');
        const sink = new FileSink(envelope);
        const header: EnvelopeHeader = { codec: codec.stored!, sha256: original.sha256, size: original.size };
        await sink.write(Buffer.from(`${magic}${JSON.stringify(header)}\n`));
        const coded = codec.wrapSink(sink);
        try {
          const d = await copyWithDigest(readFileChunks(sourceFile, signal), (b) => coded.write(b), original.size, signal ?? never, name);
          if (d.sha256 !== original.sha256) throw new EbrError('logArchive', `${sourceFile} changed while it was archived`, { hint: 'the server must hand over finished logs only', context: ctx(name) });
          await coded.close();
        } catch (err) {
          coded.destroy();
          throw err;
        }
        try {
          return await inner.put(name, envelope, signal);
        } catch (err) {
          // Already stored (a retry after a crash): the same original bytes are 'identical', whatever their encoding.
          if (!(err instanceof EbrError) || err.code !== 'logArchive' || !(await inner.has(name))) throw err;
          const there = path.join(scratch, 'stored');
          await inner.get(name, there, signal);
          const header = await readHeader(there);
          if (header ? header.header.sha256 === original.sha256 : (await digestFile(there, signal)).sha256 === original.sha256) return 'identical';
          throw err;
        }
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    async get(name, destFile, signal) {
      // Fetched beside the destination (the inner store checks the stored bytes' digest), then decoded
      // there: a log stored as it is is simply renamed into place.
      const stored = `${destFile}.ebr-stored-${process.pid}-${randomBytes(4).toString('hex')}`;
      const tmp = `${destFile}.ebr-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        if (!(await inner.get(name, stored, signal))) return false;
        const envelope = await readHeader(stored);
        if (!envelope) {
          await rename(stored, destFile);
          return true;
        }
        const { header, bodyAt } = envelope;
        const codec = await codecs.forReading(header.codec);
        const out = new FileSink(tmp);
        try {
          const d = await copyWithDigest(codec.decode(readFileChunks(stored, signal, bodyAt), `${context.kind}/${name}`, signal), (b) => out.write(b), undefined, signal ?? never, name);
          await out.close();
          if (d.size !== header.size || d.sha256 !== header.sha256) {
            throw new EbrError('digestMismatch', `${name} in the log archive does not decode to the bytes it was stored from (sha256 ${d.sha256.slice(0, 12)}…, recorded ${header.sha256.slice(0, 12)}…)`, {
              hint: 'the archived log is damaged; recovery cannot go past it. Restore to a time before it, or from a copy of the archive',
              context: ctx(name),
            });
          }
        } catch (err) {
          out.destroy();
          throw err;
        }
        await rename(tmp, destFile);
        return true;
      } finally {
        await rm(stored, { force: true });
        await rm(tmp, { force: true });
      }
    },

    has: (name) => inner.has(name),
    /** Names as the inner store lists them; sizes and digests are of the logs as stored (envelopes, when encoded). */
    list: (prefix) => inner.list(prefix),
    ...(inner.remove ? { remove: (name: string) => inner.remove!(name) } : {}),
  };
}

/** The envelope header of a stored log, or undefined when the file is a log stored as it is. */
async function readHeader(file: string): Promise<{ header: EnvelopeHeader; bodyAt: number } | undefined> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(64 << 10);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.subarray(0, bytesRead);
    if (!text.subarray(0, magic.length).equals(Buffer.from(magic))) return undefined;
    const end = text.indexOf(0x0a, magic.length);
    if (end < 0) throw new Error(`${file}: the log envelope's header has no end`);
    return { header: JSON.parse(text.subarray(magic.length, end).toString('utf8')) as EnvelopeHeader, bodyAt: end + 1 };
  } finally {
    await fh.close();
  }
}
