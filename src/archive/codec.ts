/**
 * How the bytes of a space stream (and of meta files) are stored: compressed, encrypted, or as they are.
 * The digest of every member covers the original bytes (what restore checks); the stored bytes get
 * their own digest (what verify checks first). A codec knows nothing of tar, targets or databases.
 */
import type { ByteSink } from './byte-sink.js';

/** `compression:` of an instance. */
export interface CompressionSettings {
  type: 'zstd' | 'lz4' | 'gzip' | 'none';
  level?: number;
}

/** `encryption:` of an instance: the user's key, 32 bytes, from a file or an `${ENV}` reference (hex or base64). */
export interface EncryptionSettings {
  keyFile?: string;
  key?: string;
}

/**
 * What the manifest records so a reader can decode: never a secret. The data key is fresh per backup
 * and stored only wrapped by the user's key; `keyId` tells a wrong key from a damaged archive.
 */
export interface StoredCodec {
  compression: 'zstd' | 'lz4' | 'gzip' | 'none';
  level?: number;
  encryption?: {
    alg: 'aes-256-gcm';
    /** Plaintext bytes per authenticated frame: a flipped byte is caught within one frame. */
    frameBytes: number;
    /** The data key, wrapped (AES-256-GCM) by the user's key, base64. */
    wrappedKey: string;
    /** A digest that identifies the user's key without revealing it. */
    keyId: string;
  };
}

export interface Codec {
  /** What the manifest records; undefined for bytes stored as they are. */
  readonly stored: StoredCodec | undefined;
  /**
   * A sink that encodes what is written to it on its way to `out`. Its `position` counts the original
   * bytes (member offsets are offsets in the original stream), its `written` is out's; a write resolves
   * once out took what it made (back-pressure). close() flushes the encoder, then closes out. Each
   * call is a stream of its own, decodable alone with `stored` and the user's key.
   */
  wrapSink(out: ByteSink): ByteSink;
  /** The original bytes from stored ones; throws EbrError('archive') naming `label` on damage or a wrong key. */
  decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncIterable<Buffer>;
  /** Small whole things (meta files): encoded in one go, each a stream of its own. */
  encodeBuffer(data: Buffer): Promise<Buffer>;
  decodeBuffer(data: Buffer, label: string): Promise<Buffer>;
}

/** Bytes as they are: what every backup without `compression:` or `encryption:` uses. */
export const identityCodec: Codec = {
  stored: undefined,
  wrapSink: (out) => out,
  decode: (source) => source,
  encodeBuffer: async (data) => data,
  decodeBuffer: async (data) => data,
};
