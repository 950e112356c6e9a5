/** Backups written and read through the archive target API, for the tape targets' tests: spaces of odd sizes, a drive that counts. */
import { createHash, randomBytes } from 'node:crypto';
import type { ArchiveReader, ArchiveTarget, BackupRef, MemberHeader } from '../../src/archive/archive-target.js';
import { spaceReadOptions } from '../../src/archive/coded-space.js';
import { identityCodec } from '../../src/archive/codec.js';
import { manifestFormat, manifestText, sha256Of, type Manifest, type ManifestMember, type ManifestSpace } from '../../src/archive/manifest.js';
import type { TapeDrive, VolumeRequest } from '../../src/archive/tape/tape-drive.js';

export type FixtureMember = { name: string; type: 'file'; data: Buffer } | { name: string; type: 'directory' } | { name: string; type: 'symlink'; linkTarget: string };

export interface FixtureSpace {
  name: string;
  members: FixtureMember[];
}

const MiB = 1 << 20;
const file = (name: string, size: number): FixtureMember => ({ name, type: 'file', data: randomBytes(size) });

/**
 * Three spaces for a 4 MiB cartridge: `big` spans three cartridges, `mid` two, `small` fits; files of
 * odd sizes, an empty one, one of exactly one 64 KiB block, directories and symlinks among them.
 */
export function threeSpaces(): FixtureSpace[] {
  return [
    { name: 'big', members: [{ name: 'big', type: 'directory' }, file('big/data.bin', 9 * MiB + 777), file('big/tail.bin', 1), { name: 'big/link', type: 'symlink', linkTarget: 'data.bin' }] },
    { name: 'mid', members: [file('mid/one.db', 5 * MiB + 123), file('mid/block.db', 65536), file('mid/empty.db', 0), { name: 'mid/sub', type: 'directory' }] },
    { name: 'small', members: [file('small/a.db', 300_001), { name: 'small/to-a', type: 'symlink', linkTarget: 'a.db' }, { name: 'small/d', type: 'directory' }] },
  ];
}

export const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function* chunks(data: Buffer, size = MiB): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** Writes the spaces and meta files as the workflow does (one space after another, meta, manifest last); returns the manifest. */
export async function writeBackup(target: ArchiveTarget, ref: BackupRef, spaces: FixtureSpace[], meta: Record<string, Buffer> = {}): Promise<Manifest> {
  const signal = new AbortController().signal;
  const w = await target.create(ref);
  const mSpaces: ManifestSpace[] = [];
  const members: ManifestMember[] = [];
  for (const s of spaces) {
    const out = await w.openSpace(s.name, identityCodec);
    const mine: ManifestMember[] = [];
    for (const m of s.members) {
      const header: MemberHeader = { name: m.name, type: m.type, size: m.type === 'file' ? m.data.length : 0, mode: m.type === 'directory' ? 0o750 : 0o640, mtimeMs: 1_700_000_000_000, ...(m.type === 'symlink' ? { linkTarget: m.linkTarget } : {}) };
      const written = m.type === 'file' ? await out.addFile(header, chunks(m.data), signal) : await out.addEntry(header);
      mine.push({ space: s.name, ...header, path: `/live/${m.name}`, sha256: written.sha256, size: written.size, stream: '', offset: written.offset });
    }
    const closed = await out.close();
    for (const m of mine) m.stream = closed.file;
    members.push(...mine);
    mSpaces.push({ name: s.name, critical: false, kind: 'test', stream: closed.file, ...(closed.stored ? { stored: closed.stored } : {}), ...(closed.placement ? { placement: closed.placement } : {}) });
  }
  for (const [name, data] of Object.entries(meta)) await w.writeMeta(name, data);
  const manifest: Manifest = {
    format: manifestFormat,
    backupId: ref.backupId,
    instance: ref.instance,
    vendor: 'test',
    server: {},
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:04:09.000Z',
    blockWindowMs: 1,
    windowSteps: {},
    snapshotProvider: 'copy',
    log: {},
    metaFiles: Object.keys(meta),
    spaces: mSpaces,
    members,
  };
  await w.writeManifest(manifest);
  return manifest;
}

export const manifestSha = (m: Manifest) => sha256Of(manifestText(m));

/** Every member of a space as read back: type, size, digest of the bytes, link target. */
export async function readSpace(reader: ArchiveReader, manifest: Manifest, space: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const signal = new AbortController().signal;
  for await (const { header, body } of reader.readSpace(space, signal, spaceReadOptions(manifest.spaces.find((s) => s.name === space), identityCodec))) {
    const hash = createHash('sha256');
    let size = 0;
    for await (const b of body) {
      hash.update(b);
      size += b.length;
    }
    out[header.name] = `${header.type} ${size} ${hash.digest('hex')}${header.linkTarget ? ` -> ${header.linkTarget}` : ''}`;
  }
  return out;
}

/** What each space holds, as readSpace reports it. */
export function expectedOf(space: FixtureSpace): Record<string, string> {
  const empty = sha(Buffer.alloc(0));
  return Object.fromEntries(space.members.map((m) => [m.name, m.type === 'file' ? `file ${m.data.length} ${sha(m.data)}` : `${m.type} 0 ${empty}${m.type === 'symlink' ? ` -> ${m.linkTarget}` : ''}`]));
}

/** A drive that passes everything on and counts the blocks read from and written to each tape file, by cartridge. */
export class CountingDrive implements TapeDrive {
  readonly reads = new Map<string, number>();
  readonly writes: number[] = [];
  readonly changes: VolumeRequest[] = [];
  private file = 0;

  constructor(private readonly inner: TapeDrive) {}

  get blockSize() {
    return this.inner.blockSize;
  }
  get loaded() {
    return this.inner.loaded;
  }
  /** Blocks read from tape file `file` of `cartridge`. */
  readsOf(cartridge: string, file: number): number {
    return this.reads.get(`${cartridge}:${file}`) ?? 0;
  }
  async writeBlock(block: Buffer) {
    await this.inner.writeBlock(block);
    this.writes.push(block.length);
  }
  async writeFileMark() {
    await this.inner.writeFileMark();
    this.file++;
  }
  async seekFile(n: number, signal?: AbortSignal) {
    await this.inner.seekFile(n, signal);
    this.file = n;
  }
  async readBlock(signal?: AbortSignal) {
    const b = await this.inner.readBlock(signal);
    if (b) {
      const k = `${this.inner.loaded}:${this.file}`;
      this.reads.set(k, (this.reads.get(k) ?? 0) + 1);
    } else this.file++;
    return b;
  }
  async fileCount(signal?: AbortSignal) {
    const n = await this.inner.fileCount(signal);
    this.file = n;
    return n;
  }
  async rewind(signal?: AbortSignal) {
    await this.inner.rewind(signal);
    this.file = 0;
  }
  async change(request: VolumeRequest, signal?: AbortSignal) {
    this.changes.push(request);
    await this.inner.change(request, signal);
    this.file = 0;
  }
  release() {
    return this.inner.release();
  }
}
