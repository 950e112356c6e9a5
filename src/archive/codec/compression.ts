/**
 * The compressions a codec can use, one file each, listed here once. Each says which levels it takes,
 * how to make an encoding step, and how to decode a stored stream back, in constant memory.
 */
import type { CompressionSettings } from '../codec.js';
import type { Stage } from './stage.js';
import { zstdCompression } from './zstd-compression.js';
import { lz4Compression } from './lz4-compression.js';
import { gzipCompression } from './gzip-compression.js';

export type CompressionType = Exclude<CompressionSettings['type'], 'none'>;

export interface Compression {
  readonly type: CompressionType;
  /** The level used when the config names none; undefined when the format has no levels here. */
  readonly defaultLevel: number | undefined;
  /** The levels the config may name; undefined: a level is refused. */
  readonly levels: { min: number; max: number } | undefined;
  /** An encoding step writing this format to `next`; `level` is within `levels` (or undefined). */
  encoder(next: Stage, level: number | undefined): Stage;
  /** The original bytes of a stored stream; damage throws EbrError('archive') naming `label`. Errors of `source` pass as they are. */
  decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncGenerator<Buffer>;
}

const all: Compression[] = [zstdCompression, lz4Compression, gzipCompression];

export const compressions: ReadonlyMap<string, Compression> = (() => {
  const m = new Map<string, Compression>();
  for (const c of all) {
    if (m.has(c.type)) throw new Error(`compression ${c.type} is registered twice`);
    m.set(c.type, c);
  }
  return m;
})();
