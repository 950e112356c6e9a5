/** A backup written through the ArchiveTarget API: spaces of odd-sized files, directories and symlinks, written in parallel. */
import { createHash, randomBytes } from 'node:crypto';
import type { ArchiveTarget, ArchiveWriter, BackupRef, MemberHeader } from '../../src/archive/archive-target.js';
import { manifestFormat, type Manifest, type ManifestMember, type ManifestSpace } from '../../src/archive/manifest.js';

export interface FixtureMember {
  header: MemberHeader;
  data?: Buffer;
}

const mib = 1 << 20;

/** Three spaces: one past several 5 MiB parts, one of a few MiB, one of small things. */
export function fixtureSpaces(): Record<string, FixtureMember[]> {
  const file = (name: string, size: number): FixtureMember => ({ header: { name, type: 'file', size, mode: 0o640, mtimeMs: 1_700_000_000_000 }, data: randomBytes(size) });
  return {
    main: [file('main.db', 11 * mib + 333), { header: { name: 'pg_wal', type: 'directory', size: 0, mode: 0o700 } }, file('pg_wal/000000010000000000000001', 3 * mib + 7)],
    audit: [file('audit.db', 2 * mib + 4097), { header: { name: 'audit.link', type: 'symlink', size: 0, linkTarget: 'audit.db' } }],
    tiny: [file('one.byte', 1), file('empty', 0), { header: { name: 'sub', type: 'directory', size: 0, mode: 0o755 } }, file('sub/odd', 517 * 1024 + 1)],
  };
}

/** The bytes in pieces of about 1 MiB (never the whole file in one buffer). */
export async function* pieces(data: Buffer): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += mib) yield data.subarray(i, Math.min(data.length, i + mib));
}

export function sha256(data: Buffer | undefined): string {
  return createHash('sha256').update(data ?? Buffer.alloc(0)).digest('hex');
}

/** Writes every space at once (one stream each); returns the manifest it would seal with, not yet written. */
export async function writeSpaces(writer: ArchiveWriter, ref: BackupRef, spaces: Record<string, FixtureMember[]>): Promise<Manifest> {
  const signal = new AbortController().signal;
  const written = await Promise.all(
    Object.entries(spaces).map(async ([space, members]) => {
      const w = await writer.openSpace(space);
      const out: ManifestMember[] = [];
      for (const m of members) {
        const r = m.header.type === 'file' ? await w.addFile(m.header, pieces(m.data!), signal) : await w.addEntry(m.header);
        out.push({ space, name: m.header.name, path: `/live/${space}/${m.header.name}`, type: m.header.type, size: r.size, sha256: r.sha256, stream: `spaces/${space}.tar`, offset: r.offset });
      }
      const closed = await w.close();
      const s: ManifestSpace = { name: space, critical: space === 'main', kind: 'database', stream: closed.file, ...(closed.stored ? { stored: closed.stored } : {}) };
      return { space: s, members: out };
    }),
  );
  return {
    format: manifestFormat,
    backupId: ref.backupId,
    instance: ref.instance,
    vendor: 'test',
    server: {},
    startedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    blockWindowMs: 1,
    windowSteps: {},
    snapshotProvider: 'copy',
    log: { logStart: undefined, logEnd: undefined, timeline: undefined },
    metaFiles: ['backup_label'],
    spaces: written.map((w) => w.space),
    members: written.flatMap((w) => w.members),
  } as Manifest;
}

/** A whole backup: spaces, one meta file, the manifest last. */
export async function writeBackup(target: ArchiveTarget, ref: BackupRef, spaces = fixtureSpaces()): Promise<{ manifest: Manifest; spaces: Record<string, FixtureMember[]> }> {
  const writer = await target.create(ref);
  const manifest = await writeSpaces(writer, ref, spaces);
  await writer.writeMeta('backup_label', 'START WAL LOCATION: 0/2000028\n');
  await writer.writeManifest(manifest);
  return { manifest, spaces };
}

/** Every member of one space as read back: name, type, size, sha256 of its bytes. */
export async function readBack(target: ArchiveTarget, ref: BackupRef, space: string, manifest?: Manifest): Promise<Array<{ name: string; type: string; size: number; sha256: string; linkTarget?: string }>> {
  const reader = await target.open(ref);
  const stored = manifest?.spaces.find((s) => s.name === space)?.stored;
  const out = [];
  for await (const m of reader.readSpace(space, new AbortController().signal, stored ? { stored } : {})) {
    const hash = createHash('sha256');
    let size = 0;
    for await (const b of m.body) {
      hash.update(b);
      size += b.length;
    }
    out.push({ name: m.header.name, type: m.header.type, size, sha256: hash.digest('hex'), ...(m.header.linkTarget ? { linkTarget: m.header.linkTarget } : {}) });
  }
  return out;
}

export function expected(members: FixtureMember[]) {
  return members.map((m) => ({ name: m.header.name, type: m.header.type, size: m.data?.length ?? 0, sha256: sha256(m.data), ...(m.header.linkTarget ? { linkTarget: m.header.linkTarget } : {}) }));
}
