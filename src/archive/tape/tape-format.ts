/**
 * What ebr writes on a tape, as data. Every cartridge of a backup starts with a label (tape file 0,
 * one block). Every other tape file starts with a header block naming what it holds, then the data in
 * whole blocks, the last one zero-padded; a file mark ends it. Labels and headers are one line of JSON
 * padded with zeros to the block, so `dd bs=<blockSize> count=1 | head -1` shows them.
 */
import { z } from 'zod';
import { EbrError } from '../../errors.js';

/** The format marker of every label and header: another program's tape, or a future layout, is told apart. */
export const tapeFormat = 'ebr-tape/1';

/** One stretch of a tape file on one cartridge: a stream that does not fit continues in file 1 of the next volume. */
export interface Segment {
  volume: number;
  /** Tape file number on that volume (0 is the label). */
  file: number;
  /** Where the segment's bytes start in the whole stream. */
  offset: number;
  bytes: number;
  /** Of the segment's bytes, checked when it is read back (a damaged block is named with its cartridge and file). */
  sha256: string;
  /** The vtape cartridge that held the volume when it was written (a drive leaves it out). */
  cartridge?: string;
}

/** A space's `placement` in the manifest: what readSpace needs to seek straight to it. */
export interface TapePlacement {
  medium: 'tape' | 'vtape';
  blockSize: number;
  segments: Segment[];
}

export interface TapeLabel {
  format: typeof tapeFormat;
  kind: 'label';
  backupId: string;
  instance: string;
  volume: number;
  blockSize: number;
  writtenAt: string;
}

export type TapeFileKind = 'space' | 'meta' | 'manifest';

export interface TapeFileHeader {
  format: typeof tapeFormat;
  kind: TapeFileKind;
  backupId: string;
  volume: number;
  file: number;
  /** The space, the meta file, or `manifest.json`. */
  name: string;
  /** 1 on the volume where the tape file starts, 2… on the volumes it continues on. */
  part: number;
  /** Where this part starts in the whole stream. */
  offset: number;
  /** Known before the first byte for meta files and the manifest (their size and sha256 as a whole). */
  bytes?: number;
  sha256?: string;
  /** On the manifest's header: where the meta files lie, so that the manifest alone leads to them. */
  meta?: Record<string, Segment[]>;
  /** On the manifest's header, when it fits: each space's segments, for readers without the manifest's placement. */
  spaces?: Record<string, Segment[]>;
}

const segment = z.object({
  volume: z.number().int().positive(),
  file: z.number().int().positive(),
  offset: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  cartridge: z.string().optional(),
});

export const placementSchema = z.object({ medium: z.enum(['tape', 'vtape']), blockSize: z.number().int().positive(), segments: z.array(segment).min(1) });

const labelSchema = z.object({
  format: z.literal(tapeFormat),
  kind: z.literal('label'),
  backupId: z.string(),
  instance: z.string(),
  volume: z.number().int().positive(),
  blockSize: z.number().int().positive(),
  writtenAt: z.string(),
});

const headerSchema = z.object({
  format: z.literal(tapeFormat),
  kind: z.enum(['space', 'meta', 'manifest']),
  backupId: z.string(),
  volume: z.number().int().positive(),
  file: z.number().int().positive(),
  name: z.string(),
  part: z.number().int().positive(),
  offset: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative().optional(),
  sha256: z.string().optional(),
  meta: z.record(z.array(segment)).optional(),
  spaces: z.record(z.array(segment)).optional(),
});

/** A label or header as one block: JSON, a newline, zeros. Undefined when it does not fit (the caller decides what to leave out). */
export function encodeBlock(record: TapeLabel | TapeFileHeader, blockSize: number): Buffer | undefined {
  const text = Buffer.from(`${JSON.stringify(record)}\n`);
  if (text.length > blockSize) return undefined;
  const block = Buffer.alloc(blockSize);
  text.copy(block);
  return block;
}

/** The JSON line at the start of a block; undefined when the block holds none (a blank cartridge, data, another format). */
export function blockRecord(block: Buffer): unknown {
  const end = block.indexOf(0x0a);
  if (end <= 0 || block[0] !== 0x7b) return undefined;
  try {
    return JSON.parse(block.subarray(0, end).toString('utf8'));
  } catch {
    return undefined;
  }
}

export function parseLabel(block: Buffer | undefined): TapeLabel | undefined {
  if (!block) return undefined;
  const r = labelSchema.safeParse(blockRecord(block));
  return r.success ? r.data : undefined;
}

/** What a reader expects in a tape file's header; left out, a field is not checked. */
export interface HeaderExpectation {
  backupId: string;
  kind?: TapeFileKind;
  name?: string;
  part?: number;
  offset?: number;
}

/** The header of a tape file, checked against what the reader expects there; a mismatch names both. */
export function parseHeader(block: Buffer | undefined, where: string, expect: HeaderExpectation): TapeFileHeader {
  const r = headerSchema.safeParse(block ? blockRecord(block) : undefined);
  if (!r.success) {
    throw new EbrError('archive', `${where} does not start with an ebr tape header (${block ? 'its first block is damaged or not ebr' : 'it is empty'})`, {
      hint: 'the tape is damaged, or another cartridge is in the drive; look at the label with `dd bs=<blockSize> count=1 | head -1`',
      context: { path: where },
    });
  }
  const h = r.data as TapeFileHeader;
  const wrong =
    h.backupId !== expect.backupId
      ? `backup ${h.backupId}`
      : (expect.kind && h.kind !== expect.kind) || (expect.name !== undefined && h.name !== expect.name)
        ? `${h.kind} ${h.name}`
        : expect.part !== undefined && h.part !== expect.part
          ? `part ${h.part}`
          : expect.offset !== undefined && h.offset !== expect.offset
            ? `the part from byte ${h.offset}`
            : undefined;
  if (wrong) {
    const want = `${expect.kind ?? 'a tape file'}${expect.name !== undefined ? ` ${expect.name}` : ''}${expect.part ? ` part ${expect.part}` : ''}`;
    throw new EbrError('archive', `${where} holds ${wrong}, not ${want} of backup ${expect.backupId}`, {
      hint: 'the placement does not match this tape: another cartridge was loaded under this volume number, or the tape was rewritten',
      context: { path: where, backupId: expect.backupId },
    });
  }
  return h;
}

/** The placement a space recorded, or undefined when it recorded none (or not one a tape wrote). */
export function parsePlacement(p: Record<string, unknown> | undefined): TapePlacement | undefined {
  if (!p) return undefined;
  const r = placementSchema.safeParse(p);
  return r.success ? (r.data as TapePlacement) : undefined;
}
