/**
 * One file of an incremental or differential backup: its blocks are read and hashed once, compared
 * with the parent's recorded digests, and only the blocks that differ are read again and stored. A tar
 * member says its size before its bytes, so the changed blocks are known before the body is written:
 * that costs a second read of the changed blocks (usually still in the page cache), never a buffer the
 * size of the file. Each block read the second time is hashed again and must match the first read:
 * a copy that was not frozen fails the backup instead of storing a mix.
 *
 * Every byte is read: ebr does not trust mtimes to skip files (a restore that copied a file back keeps
 * its old mtime, and so do some storage tools).
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { MemberHeader, SpaceWriter, WrittenMember } from '../archive/archive-target.js';
import { BlockHasher, BlockList, blockCount, blockLength, encodeBlocks, hashingBlocks, type BlockDigestKind } from '../archive/block-digests.js';
import { readFileChunks } from '../archive/digest-copy.js';
import type { BlockRun, ManifestMember } from '../archive/manifest.js';
import { throwIfAborted } from '../errors.js';

/** The backup an incremental compares with: its id, block size and digest, and members by space and name. */
export interface BlockBase {
  backupId: string;
  blockSize: number;
  /** The incremental records its blocks the same way, so that they compare with the parent's. */
  blockDigest: BlockDigestKind;
  members: Map<string, ManifestMember>;
}

export function memberKey(space: string, name: string): string {
  return `${space}\0${name}`;
}

/** Where block i of the parent's member lies: the backup whose body holds it and its index there. */
function locate(parent: ManifestMember, parentId: string, i: number): { backup: string; at: number } {
  if (!parent.parts) return { backup: parentId, at: i };
  let first = 0;
  let own = 0;
  for (const run of parent.parts) {
    if (i < first + run.count) return { backup: run.backup ?? parentId, at: (run.backup ? run.at : own) + (i - first) };
    first += run.count;
    if (!run.backup) own += run.count;
  }
  throw new Error(`block ${i} of ${parent.name} is not in the parts of backup ${parentId}`);
}

/** Runs of consecutive blocks from one place, in block order. */
function runsOf(places: Array<{ backup?: string; at: number }>): BlockRun[] {
  const runs: BlockRun[] = [];
  for (const p of places) {
    const last = runs.at(-1);
    if (last && last.backup === p.backup && (p.backup === undefined || last.at + last.count === p.at)) last.count++;
    else runs.push({ ...(p.backup !== undefined ? { backup: p.backup } : {}), at: p.at, count: 1 });
  }
  return runs;
}

export interface ChangedBlocksResult {
  written: WrittenMember;
  /** Fields of the manifest member beyond the header's: the file's size, digest and blocks, the parts and body when not whole. */
  member: Pick<ManifestMember, 'size' | 'sha256' | 'blocks' | 'parts' | 'body'>;
  /** Blocks stored in this backup, and of how many. */
  changed: number;
  total: number;
}

export async function streamChangedBlocks(o: {
  file: string;
  /** Byte range of the file (a chunk that is a range of its file or device). */
  start?: number;
  size: number;
  header: MemberHeader;
  parent: ManifestMember;
  base: BlockBase;
  out: SpaceWriter;
  /** The first read goes through it (the rate limit and the progress meter)… */
  throttle: (source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>;
  /** …the second, of the changed blocks, through this one (the rate limit only: progress counts the file once). */
  limit: (source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>;
  signal: AbortSignal;
}): Promise<ChangedBlocksResult> {
  const bs = o.base.blockSize;
  const total = blockCount(o.size, bs);
  const hasher = await BlockHasher.create(bs, o.base.blockDigest);
  const whole = createHash('sha256');
  let read = 0;
  for await (const b of o.throttle(hashingBlocks(readFileChunks(o.file, o.signal, o.start ?? 0, o.size), hasher))) {
    read += b.length;
    whole.update(b);
  }
  if (read !== o.size) throw new Error(`${o.file} has ${read} bytes, expected ${o.size}: it changed while it was read`);
  const digests = hasher.finish();
  const sha256 = whole.digest('hex');
  const parentBlocks = o.parent.blocks ? await BlockList.parse(o.parent.blocks, blockCount(o.parent.size, bs), o.parent.name, o.base.blockDigest) : undefined;
  const places: Array<{ backup?: string; at: number }> = [];
  const changed: number[] = [];
  for (let i = 0; i < total; i++) {
    const same = parentBlocks && i < parentBlocks.length && parentBlocks.digest(i).equals(digests[i]!);
    if (same) places.push(locate(o.parent, o.base.backupId, i));
    else {
      places.push({ at: changed.length });
      changed.push(i);
    }
  }
  const bodySize = changed.reduce((a, i) => a + blockLength(i, o.size, bs), 0);
  const written = await o.out.addFile({ ...o.header, size: bodySize }, o.limit(rereadBlocks(o.file, o.start ?? 0, o.size, bs, changed, await BlockList.of(digests, o.base.blockDigest), o.signal)), o.signal);
  const blocks = encodeBlocks(digests);
  if (changed.length === total) {
    // Every block changed: the body is the whole file, as in a full backup, and depends on no parent.
    if (written.sha256 !== sha256) throw new Error(`${o.file} changed between its two reads: the copy was not frozen`);
    return { written, member: { size: o.size, sha256, blocks }, changed: total, total };
  }
  return { written, member: { size: o.size, sha256, blocks, parts: runsOf(places), body: { size: written.size, sha256: written.sha256 } }, changed: changed.length, total };
}

/** The changed blocks, read again one by one, each checked against its first read. */
async function* rereadBlocks(file: string, start: number, size: number, bs: number, changed: number[], firstRead: BlockList, signal: AbortSignal): AsyncGenerator<Buffer> {
  if (changed.length === 0) return;
  const fh = await open(file, 'r');
  try {
    for (const i of changed) {
      throwIfAborted(signal, { path: file });
      const len = blockLength(i, size, bs);
      const buf = Buffer.allocUnsafe(len);
      for (let got = 0; got < len; ) {
        const { bytesRead } = await fh.read(buf, got, len - got, start + i * bs + got);
        if (bytesRead === 0) throw new Error(`${file} shrank between its two reads: the copy was not frozen`);
        got += bytesRead;
      }
      if (!firstRead.matches(i, buf)) throw new Error(`block ${i} of ${file} changed between its two reads: the copy was not frozen`);
      yield buf;
    }
  } finally {
    await fh.close();
  }
}
