/**
 * One space of a restore, from its stream into verified temps beside the destinations: members copied
 * straight into their temps, or — an incremental's files and `--delta` — staged block by block from
 * the space's stream and then from the streams of the backups of the chain (restore-blocks.ts). Any
 * member the manifest does not list, lists otherwise, or whose bytes do not match stops the restore.
 */
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes } from '../adapter-api.js';
import type { ArchiveReader, ReadSpaceOptions } from '../archive/archive-target.js';
import type { BlockDigestKind } from '../archive/block-digests.js';
import { spaceReadOptions } from '../archive/coded-space.js';
import { digestOf, readFileChunks } from '../archive/digest-copy.js';
import { bodyOf, type ManifestMember } from '../archive/manifest.js';
import { EbrError, throwIfAborted } from '../errors.js';
import { faultPoint } from '../util/fault.js';
import { countedBytes } from './progress.js';
import { BlockAssembly, differingBlocks, numberedBlocks } from './restore-blocks.js';
import type { ChainBackup } from './restore-chain.js';
import type { RestoreJournal, StagedFile } from './restore-journal.js';

export interface ExtractOptions {
  reader: ArchiveReader;
  read: ReadSpaceOptions;
  space: string;
  expected: ManifestMember[];
  destinations: Map<string, string>;
  sideFilesOf: ((dest: string) => string[]) | undefined;
  journal: RestoreJournal;
  staged: StagedFile[];
  directories: Array<{ dest: string; m: ManifestMember }>;
  meter: { add(n: number, space?: string): void };
  signal: AbortSignal;
  ctx: Record<string, unknown>;
  /** The manifest's block size (block digests recorded); absent: none. */
  blockSize: number | undefined;
  /** The kind of those digests (Manifest.blockDigest, sha256 when absent). */
  blockDigest: BlockDigestKind;
  /** --delta: what is identical on disk is left alone; counts what was found. */
  delta: { unchangedFiles: number; changedBlocks: number; totalBlocks: number } | undefined;
  /** An incremental's other backups, by id; those whose streams were read are added to chainRead. */
  chain: Map<string, ChainBackup>;
  chainRead: Set<string>;
}

/** One space's members into verified temp files beside their destinations; a member the manifest does not list, or lists otherwise, stops the restore. */
export async function extractSpace(o: ExtractOptions): Promise<void> {
  const { space, journal, signal, ctx } = o;
  const byName = new Map(o.expected.map((m) => [m.name, m]));
  // Ranges of one file are staged apart, each under a name of its own beside the file.
  const tempKey = (m: ManifestMember) => (m.fileOffset === undefined ? o.destinations.get(m.name)! : `${o.destinations.get(m.name)!}.at-${m.fileOffset}`);
  const temps = journal.planTemps(o.expected.filter((m) => m.type !== 'directory').map(tempKey));
  const seen = new Set<string>();
  // Files staged block by block: whole, or still waiting for blocks of older backups of the chain.
  const done: Staging[] = [];
  const pending: Staging[] = [];
  // Block by block, a piece is kept while a block is gathered: the reader must not reuse its buffers.
  const blockwise = !!o.blockSize && o.expected.some((m) => m.blocks && (m.parts || o.delta));
  for await (const { header, body } of o.reader.readSpace(space, signal, blockwise ? { ...o.read, transient: false } : o.read)) {
    throwIfAborted(signal, { ...ctx, phase: 'restore', space });
    const m = byName.get(header.name);
    if (!m) throw damaged(`space ${space} holds a member ${JSON.stringify(header.name)} that the manifest does not list`, space, header.name, ctx);
    if (seen.has(m.name)) throw damaged(`space ${space} holds member ${m.name} twice`, space, m.name, ctx);
    if (header.type !== m.type) throw damaged(`member ${m.name} of space ${space} is a ${header.type} in the archive, but the manifest says ${m.type}`, space, m.name, ctx);
    if (m.type === 'symlink' && (header.linkTarget ?? '') !== (m.linkTarget ?? '')) throw damaged(`symbolic link ${m.name} of space ${space} points at ${header.linkTarget} in the archive, but the manifest says ${m.linkTarget}`, space, m.name, ctx);
    seen.add(m.name);
    const dest = o.destinations.get(m.name)!;
    if (m.type === 'directory') {
      await journal.ensureDir(dest);
      o.directories.push({ dest, m });
      continue;
    }
    const temp = temps.get(tempKey(m))!;
    if (m.type === 'symlink') {
      await journal.stageSymlink(temp, m.linkTarget ?? '', attributesOf(m));
      o.staged.push({ temp, dest, sideFiles: [] });
      continue;
    }
    await journal.guard.check(dest);
    const attrs = { ...attributesOf(m), ...(m.mtimeMs !== undefined ? { mtimeMs: m.mtimeMs } : {}) };
    const counted = countedBytes(body, (n) => o.meter.add(n, space));
    if (o.blockSize && m.blocks && (m.parts || o.delta)) {
      const a = await assemble(o, m, dest, temp, counted);
      if (a) (a.remaining ? pending : done).push(a);
      continue;
    }
    if (o.delta && (await sameFile(dest, m, signal))) {
      // Identical on disk (no block digests to compare by: the whole file's): only the archive's copy is checked.
      await checkBody(counted, m, space, ctx, signal);
      o.delta.unchangedFiles++;
      o.directories.push({ dest, m });
      continue;
    }
    const got = await journal.stageFile(temp, counted, signal, m.name, attrs);
    faultPoint('stage');
    o.staged.push(m.fileOffset === undefined ? { temp, dest, sideFiles: o.sideFilesOf?.(dest) ?? [] } : { temp, dest, sideFiles: [], range: { offset: m.fileOffset, size: m.size } });
    if (got.size !== m.size || got.sha256 !== m.sha256) {
      throw damaged(`member ${m.name} of space ${space} does not match its digest (read ${got.size} bytes, sha256 ${got.sha256.slice(0, 16)}…; the catalog says ${m.size} bytes, ${m.sha256.slice(0, 16)}…)`, space, m.name, ctx);
    }
  }
  // An incremental's blocks that lie in older backups: each backup's stream of this space read once.
  for (const [id, from] of o.chain) {
    const wanted = new Map(pending.flatMap((a) => { const needs = a.remoteNeeds().get(id); return needs ? [[a.m.name, { a, needs }] as const] : []; }));
    if (!wanted.size) continue;
    const fromSpace = from.manifest.spaces.find((sp) => sp.name === space);
    if (!fromSpace) throw damaged(`backup ${id} of the chain has no space ${space}`, space, [...wanted.keys()][0]!, ctx);
    o.chainRead.add(id);
    let left = wanted.size;
    const theirs = new Map(from.manifest.members.filter((x) => x.space === space).map((x) => [x.name, x]));
    for await (const { header, body } of from.reader.readSpace(space, signal, spaceReadOptions(fromSpace, from.codec))) {
      const w = wanted.get(header.name);
      if (!w) continue;
      // Block digests guard against accident only (xxh128): the body as a whole is checked against the
      // sha256 that backup's (catalog-checked) manifest recorded, before any of it can be swapped in.
      const hash = createHash('sha256');
      let size = 0;
      for await (const [j, block] of numberedBlocks(countedBytes(body, (n) => o.meter.add(n, space)), o.blockSize!)) {
        hash.update(block);
        size += block.length;
        const i = w.needs.get(j);
        if (i !== undefined && !(await w.a.write(i, block))) throw damaged(`block ${i} of member ${header.name} of space ${space}, read from backup ${id}, does not match its digest`, space, header.name, ctx);
      }
      const want = theirs.get(header.name);
      const got = hash.digest('hex');
      if (!want || size !== bodyOf(want).size || got !== bodyOf(want).sha256) {
        throw damaged(`member ${header.name} of space ${space}, read from backup ${id} of the chain, does not match its digest (read ${size} bytes, sha256 ${got.slice(0, 16)}…${want ? `; that backup's manifest says ${bodyOf(want).size} bytes, ${bodyOf(want).sha256.slice(0, 16)}…` : '; that backup\'s manifest does not list it'})`, space, header.name, ctx);
      }
      await w.a.closeHandles();
      if (--left === 0) break;
    }
    for (const { a } of wanted.values()) {
      if (a.remoteNeeds().has(id)) throw damaged(`member ${a.m.name} of space ${space} lacks blocks that backup ${id} of its chain should hold`, space, a.m.name, ctx);
    }
  }
  for (const a of [...done, ...pending]) {
    if (a.remaining) throw damaged(`member ${a.m.name} of space ${space} lacks ${a.remaining} block(s)`, space, a.m.name, ctx);
    o.staged.push(...(await a.finish({ ...attributesOf(a.m), ...(a.m.mtimeMs !== undefined ? { mtimeMs: a.m.mtimeMs } : {}) }, a.whole ? (o.sideFilesOf?.(a.dest) ?? []) : [])));
    faultPoint('stage');
  }
  const missing = o.expected.filter((m) => !seen.has(m.name));
  if (missing.length) throw damaged(`space ${space} lacks ${missing.length} member(s) the manifest lists, first ${missing[0]!.name}`, space, missing[0]!.name, ctx);
}

type Staging = BlockAssembly & { whole: boolean };

/**
 * One file staged block by block from its own body: an incremental's (its other blocks follow from the
 * chain) or a delta restore's. Returns undefined when --delta found the file identical on disk.
 */
async function assemble(o: ExtractOptions, m: ManifestMember, dest: string, temp: string, body: AsyncIterable<Buffer>): Promise<Staging | undefined> {
  const { space, ctx, signal } = o;
  const bs = o.blockSize!;
  const differ = o.delta ? await differingBlocks(dest, m, bs, o.blockDigest, signal) : undefined;
  if (o.delta && differ && !differ.some(Boolean)) {
    await checkBody(body, m, space, ctx, signal);
    o.delta.unchangedFiles++;
    o.directories.push({ dest, m });
    return undefined;
  }
  // Runs of changed blocks go into the file in place; not where old side files (a -wal) must go with it.
  const ranges = !!differ && !(await anyExists(o.sideFilesOf?.(dest) ?? []));
  const a = Object.assign(await BlockAssembly.create(m, dest, bs, o.blockDigest, ranges ? differ : undefined), { whole: !ranges });
  if (o.delta) {
    o.delta.totalBlocks += a.total;
    o.delta.changedBlocks += a.remaining;
  }
  if (ranges) {
    const temps = o.journal.planTemps(a.runs().map((r) => `${dest}.blocks-${r.first}`));
    await a.rangesInto([...temps.values()]);
    o.directories.push({ dest, m });
  } else {
    await o.journal.ensureDir(path.dirname(temp));
    await a.wholeInto(temp);
  }
  const own = a.ownIndices();
  const hash = createHash('sha256');
  let size = 0;
  for await (const [j, block] of numberedBlocks(body, bs)) {
    hash.update(block);
    size += block.length;
    const i = own[j];
    if (i === undefined) break;
    if (!(await a.write(i, block))) throw damaged(`block ${i} of member ${m.name} of space ${space} does not match its digest`, space, m.name, ctx);
  }
  const want = bodyOf(m);
  const got = hash.digest('hex');
  if (size !== want.size || got !== want.sha256) throw damaged(`member ${m.name} of space ${space} does not match its digest (read ${size} bytes, sha256 ${got.slice(0, 16)}…; the catalog says ${want.size} bytes, ${want.sha256.slice(0, 16)}…)`, space, m.name, ctx);
  await a.closeHandles();
  return a;
}

/** Reads a member's body to its end and checks it against the manifest (a delta restore that writes none of it). */
async function checkBody(body: AsyncIterable<Buffer>, m: ManifestMember, space: string, ctx: Record<string, unknown>, signal: AbortSignal): Promise<void> {
  const got = await digestOf(body, signal);
  const want = bodyOf(m);
  if (got.size !== want.size || got.sha256 !== want.sha256) throw damaged(`member ${m.name} of space ${space} does not match its digest (read ${got.size} bytes, sha256 ${got.sha256.slice(0, 16)}…; the catalog says ${want.size} bytes, ${want.sha256.slice(0, 16)}…)`, space, m.name, ctx);
}

/** dest holds exactly the member's bytes (compared by the whole file's digest; a range over its range). */
async function sameFile(dest: string, m: ManifestMember, signal: AbortSignal): Promise<boolean> {
  const st = await lstat(dest).catch(() => undefined);
  if (!st || !(st.isFile() || st.isBlockDevice()) || (m.fileOffset === undefined && st.size !== m.size)) return false;
  const got = await digestOf(readFileChunks(dest, signal, m.fileOffset ?? 0, m.size), signal).catch(() => undefined);
  return got?.size === m.size && got.sha256 === m.sha256;
}

async function anyExists(paths: string[]): Promise<boolean> {
  for (const p of paths) if (await lstat(p).then(() => true, () => false)) return true;
  return false;
}

export function damaged(message: string, space: string, member: string, ctx: Record<string, unknown>): EbrError {
  return new EbrError('digestMismatch', message, {
    hint: 'nothing was replaced; the archive is damaged — restore from another backup (`ebr list`) and run `ebr verify` on this one',
    context: { ...ctx, phase: 'restore', space, member },
  });
}

export function attributesOf(m: ManifestMember): FileAttributes {
  return { ...(m.mode !== undefined ? { mode: m.mode } : {}), ...(m.uid !== undefined ? { uid: m.uid } : {}), ...(m.gid !== undefined ? { gid: m.gid } : {}) };
}
