/**
 * `ebr export`: the verified files of one backup packed into one portable archive (zip, or tar with
 * gzip) for another team or machine. Every member is read back from the target and its digest checked
 * on the way into the archive; the archive is written to a temporary file beside its final name and
 * renamed into place only once every digest matched, the archive is finished and the file is on disk.
 * A damaged member, an error or a signal leaves no file. archiver writes these formats; backups keep
 * ebr's own tar writer (bench/tar-vs-archiver.ts measures why).
 */
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, type Stats } from 'node:fs';
import { link, lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TarArchive, ZipArchive, type Archiver, type EntryData } from 'archiver';
import type { ArchiveReader } from '../archive/archive-target.js';
import { syncDir } from '../archive/backup-dir.js';
import type { Codec } from '../archive/codec.js';
import { codecForReading } from '../archive/codec/index.js';
import { spaceReadOptions } from '../archive/coded-space.js';
import { manifestText, type Manifest, type ManifestMember } from '../archive/manifest.js';
import { findBackup, type BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { membersOf } from '../catalog/discovery.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted, type ErrorContext } from '../errors.js';
import { metaProblem, trustedManifest } from './archive-trust.js';
import { targetOf } from './context.js';

export const exportFormats = ['zip', 'tgz'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/** zlib's default, which `zip` and `gzip` use too: the archive is for people, not the hot path. */
const compressionLevel = 6;

export interface ExportOptions {
  catalog: Catalog;
  instance: InstanceConfig;
  /** A backup id, or latest. */
  backupId: string;
  format: string;
  output: string;
  /** Only these spaces (any space, critical ones too: an export replaces nothing). */
  partial?: string[];
  /** Replace an existing output file. */
  force?: boolean;
  signal: AbortSignal;
}

export interface ExportResult {
  backupId: string;
  instance: string;
  output: string;
  format: ExportFormat;
  /** Size of the archive file. */
  bytes: number;
  /** Members of the backup in the archive (files, directories, symlinks), not counting meta/ and manifest.json. */
  members: number;
  /** Bytes of those members' data, before compression. */
  dataBytes: number;
  spaces: string[];
}

export async function runExport(o: ExportOptions): Promise<ExportResult> {
  const format = exportFormatOf(o.format);
  const backup = exportableBackup(o.catalog, o.backupId, o.instance.name);
  const ctx: ErrorContext = { instance: o.instance.name, backupId: backup.id, phase: 'export' };
  const output = path.resolve(o.output);
  const reader = await targetOf(o.instance).open({ instance: o.instance.name, backupId: backup.id });
  // What the archive says is trusted only where the catalog vouches for it.
  const manifest = trustedManifest(o.catalog, backup, await reader.readManifestFile(), ctx);
  const spaces = chooseSpaces(manifest, o.partial, ctx);
  const members = manifest.members.filter((m) => spaces.includes(m.space));
  checkEntryNames(manifest, members, ctx);
  await refuseExisting(output, o.force ?? false, ctx);
  // A missing or wrong key fails here, before the output is written.
  const codec = await codecForReading(manifest.codec, o.instance);
  const meta = await readMeta(reader, manifest, backup, codec, ctx);
  const recorded = new Map(membersOf(o.catalog, backup.id).map((m) => [m.name, m]));
  const sealedAt = new Date(manifest.finishedAt);
  const bytes = await writeAtomically(output, format, o.force ?? false, o.signal, ctx, async (pack) => {
    await pack.buffer('manifest.json', Buffer.from(manifestText(manifest)), sealedAt);
    for (const [name, data] of meta) await pack.buffer(`meta/${name}`, data, sealedAt);
    for (const space of spaces) {
      const read = spaceReadOptions(manifest.spaces.find((s) => s.name === space), codec);
      await packSpace({ pack, reader, space, read, expected: members.filter((m) => m.space === space), recorded, sealedAt, signal: o.signal, ctx });
    }
  });
  return { backupId: backup.id, instance: o.instance.name, output, format, bytes, members: members.length, dataBytes: members.reduce((a, m) => a + m.size, 0), spaces };
}

/** The format named, or a usage error naming the ones there are. */
export function exportFormatOf(format: string | undefined): ExportFormat {
  const known = exportFormats.find((f) => f === format);
  if (known) return known;
  throw new EbrError('usage', format ? `unknown export format ${JSON.stringify(format)}` : 'ebr export needs --format', { hint: `--format takes one of: ${exportFormats.join(', ')}` });
}

function exportableBackup(cat: Catalog, id: string, instance: string): BackupRow {
  const backup = findBackup(cat, id, instance);
  const why = backup.status !== 'complete' ? `is ${backup.status}, not complete` : backup.removed_at ? `was removed by retention on ${backup.removed_at}; its archive is gone` : undefined;
  if (why) {
    throw new EbrError('unknownBackup', `backup ${backup.id} ${why}; it cannot be exported`, {
      hint: 'pick a complete backup that is still kept from `ebr list`, or say latest',
      context: { instance, backupId: backup.id },
    });
  }
  return backup;
}

/** Every space, or the named ones in the manifest's order; the wording is restore's, without its rule on critical spaces. */
function chooseSpaces(manifest: Manifest, partial: string[] | undefined, ctx: ErrorContext): string[] {
  const all = manifest.spaces.map((s) => s.name);
  if (!partial?.length) return all;
  const unknown = partial.filter((p) => !all.includes(p));
  if (unknown.length) {
    throw new EbrError('unknownSpace', `backup ${manifest.backupId} has no space named ${unknown.join(', ')}`, {
      hint: `known spaces: ${all.join(', ')}`,
      context: { ...ctx, space: unknown[0] },
    });
  }
  return all.filter((s) => partial.includes(s));
}

/** A space named `meta` or `manifest.json` would put two entries at one name; refused before anything is read. */
function checkEntryNames(manifest: Manifest, members: ManifestMember[], ctx: ErrorContext): void {
  const kinds = new Map<string, string>([['manifest.json', 'file'], ...manifest.metaFiles.map((n): [string, string] => [`meta/${n}`, 'file'])]);
  for (const m of members) {
    const name = `${m.space}/${m.name}`;
    const clash = kinds.has(name) ? name : parentsOf(name).find((p) => (kinds.get(p) ?? 'directory') !== 'directory');
    if (clash) {
      throw new EbrError('usage', `space ${m.space} cannot be exported beside the backup's ${clash}: member ${m.name} would share its name in the archive`, {
        hint: `leave out space ${m.space}: name the others with --partial`,
        context: { ...ctx, space: m.space, member: m.name },
      });
    }
    kinds.set(name, m.type);
  }
}

function parentsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) out.push(name.slice(0, i));
  return out;
}

async function refuseExisting(output: string, force: boolean, ctx: ErrorContext): Promise<void> {
  const st = await lstat(output).catch(() => undefined);
  if (!st) return;
  if (!force) throw new EbrError('usage', `${output} already exists; ebr export does not overwrite it`, { hint: 'pass --force to replace it, or name another --output', context: { ...ctx, path: output } });
  if (!st.isFile()) throw new EbrError('usage', `${output} exists and is not a regular file; --force replaces only files`, { hint: 'name another --output', context: { ...ctx, path: output } });
}

/** The meta files, checked against the catalog's digests and decoded (small: held in memory). */
async function readMeta(reader: ArchiveReader, manifest: Manifest, backup: BackupRow, codec: Codec, ctx: ErrorContext): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of manifest.metaFiles) {
    const data = await reader.readMeta(name).catch((err: Error) => {
      throw new EbrError('archive', `cannot read meta/${name} of backup ${backup.id}: ${err.message}`, { context: { ...ctx, member: `meta/${name}` }, cause: err });
    });
    const problem = metaProblem(backup, name, data);
    if (problem) {
      throw new EbrError('digestMismatch', `the archive of backup ${backup.id} does not match the catalog: ${problem}`, {
        hint: `no export was written; the archive was edited or damaged after the backup — run \`ebr verify ${backup.id}\`, and export another backup (\`ebr list\`)`,
        context: { ...ctx, member: `meta/${name}` },
      });
    }
    files.set(name, await codec.decodeBuffer(data, `meta/${name}`));
  }
  return files;
}

/** Appends entries to the archive one at a time; each resolves once archiver has taken the whole entry. */
export interface Packer {
  buffer(name: string, data: Buffer, date: Date): Promise<void>;
  /** `source` is streamed (never held whole); `size` is what it must hold, so tar can stream it too. */
  file(name: string, source: AsyncIterable<Buffer>, size: number, attrs: Attrs): Promise<void>;
  directory(name: string, attrs: Attrs): Promise<void>;
  symlink(name: string, target: string, attrs: Attrs): Promise<void>;
}

export interface Attrs {
  mode: number | undefined;
  date: Date;
}

interface PackSpaceOptions {
  pack: Packer;
  reader: ArchiveReader;
  space: string;
  read: ReturnType<typeof spaceReadOptions>;
  expected: ManifestMember[];
  recorded: Map<string, { size: number; sha256: string }>;
  sealedAt: Date;
  signal: AbortSignal;
  ctx: ErrorContext;
}

/** One space's members under `<space>/`, each checked as it goes in; a member the manifest does not list, or lists otherwise, stops the export. */
async function packSpace(o: PackSpaceOptions): Promise<void> {
  const { space, ctx } = o;
  const byName = new Map(o.expected.map((m) => [m.name, m]));
  const seen = new Set<string>();
  const backup = ctx.backupId;
  try {
    for await (const { header, body } of o.reader.readSpace(space, o.signal, o.read)) {
      throwIfAborted(o.signal, { ...ctx, space });
      const m = byName.get(header.name);
      if (!m) throw damaged(`space ${space} of backup ${backup} holds a member ${JSON.stringify(header.name)} that the manifest does not list`, space, header.name, ctx);
      if (seen.has(m.name)) throw damaged(`space ${space} of backup ${backup} holds member ${m.name} twice`, space, m.name, ctx);
      if (header.type !== m.type) throw damaged(`member ${m.name} of space ${space} of backup ${backup} is a ${header.type} in the archive, but the manifest says ${m.type}`, space, m.name, ctx);
      if (m.type === 'symlink' && (header.linkTarget ?? '') !== (m.linkTarget ?? '')) throw damaged(`symbolic link ${m.name} of space ${space} of backup ${backup} points at ${header.linkTarget} in the archive, but the manifest says ${m.linkTarget}`, space, m.name, ctx);
      seen.add(m.name);
      const name = `${space}/${m.name}`;
      const attrs: Attrs = { mode: m.mode, date: m.mtimeMs !== undefined ? new Date(m.mtimeMs) : o.sealedAt };
      if (m.type === 'directory') await o.pack.directory(name, attrs);
      else if (m.type === 'symlink') await o.pack.symlink(name, m.linkTarget ?? '', attrs);
      else {
        // The catalog's digest where it has one: an edited manifest must not make damaged bytes look right.
        const want = o.recorded.get(m.name) ?? m;
        await o.pack.file(name, checkedBytes(body, want, o.signal, (problem) => damaged(`member ${m.name} of space ${space} of backup ${backup} does not match its digest (${problem})`, space, m.name, ctx)), want.size, attrs);
      }
    }
  } catch (err) {
    throw asEbrError(err, 'archive', { ...ctx, space });
  }
  const missing = o.expected.filter((m) => !seen.has(m.name));
  if (missing.length) throw damaged(`space ${space} of backup ${backup} lacks ${missing.length} member(s) the manifest lists, first ${missing[0]!.name}`, space, missing[0]!.name, ctx);
}

/**
 * The member's bytes as they go into archiver, hashed on the way; at the end, or as soon as there are
 * too many, a difference from the catalog throws, and the entry is never finished.
 */
async function* checkedBytes(body: AsyncIterable<Buffer>, want: { size: number; sha256: string }, signal: AbortSignal, damage: (problem: string) => EbrError): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const b of body) {
    throwIfAborted(signal);
    size += b.length;
    if (size > want.size) throw damage(`more than the ${want.size} bytes the catalog records`);
    hash.update(b);
    yield b;
  }
  const sha256 = hash.digest('hex');
  if (size !== want.size || sha256 !== want.sha256) throw damage(`read ${size} bytes, sha256 ${sha256.slice(0, 16)}…; the catalog says ${want.size} bytes, ${want.sha256.slice(0, 16)}…`);
}

function damaged(message: string, space: string, member: string, ctx: ErrorContext): EbrError {
  return new EbrError('digestMismatch', message, {
    hint: `no export was written; the archive is damaged — run \`ebr verify ${ctx.backupId}\`, and export another backup (\`ebr list\`)`,
    context: { ...ctx, space, member },
  });
}

/**
 * Writes the archive to a new temporary file beside `output` and moves it into place once archiver has
 * finished and the file is fsynced; on any failure or signal the temporary file is removed (also when a
 * second signal ends the process at once). Returns the archive's size.
 */
export async function writeAtomically(output: string, format: ExportFormat, force: boolean, signal: AbortSignal, ctx: ErrorContext, fill: (pack: Packer) => Promise<void>): Promise<number> {
  const temp = `${output}.ebr-export-${randomBytes(4).toString('hex')}`;
  const fh = await openTemp(temp, ctx);
  const removeOnExit = () => rmSync(temp, { force: true });
  process.on('exit', removeOnExit);
  const archive: Archiver = format === 'zip' ? new ZipArchive({ zlib: { level: compressionLevel } }) : new TarArchive({ gzip: true, gzipOptions: { level: compressionLevel } });
  // The stream closes the handle when it finishes or is destroyed; the fsync is then made on a fresh one, as FileSink does.
  const out = fh.createWriteStream({ highWaterMark: 8 << 20 });
  // Whatever fails first (archiver, the file, the signal) ends the export; every step waits on it too.
  let fail!: (err: unknown) => void;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined);
  const written = pipeline(archive, out);
  written.catch((err: unknown) => fail(asEbrError(err, 'archive', { ...ctx, path: output })));
  // pipeline listens for archiver's errors only until it settles; these stay for what comes after.
  archive.on('error', (err) => fail(err));
  archive.on('warning', (err) => fail(err));
  const onAbort = () => fail(new EbrError('cancelled', `cancelled${signal.reason instanceof Error ? `: ${signal.reason.message}` : ''}; no export was written`, { context: ctx }));
  signal.addEventListener('abort', onAbort, { once: true });
  if (signal.aborted) onAbort();
  try {
    await Promise.race([fill(packer(archive, failure)), failure]);
    await Promise.race([archive.finalize(), failure]);
    await Promise.race([written, failure]);
    await Promise.race([fsyncFile(temp), failure]);
    throwIfAborted(signal, ctx);
    await place(temp, output, force, ctx);
  } catch (err) {
    archive.abort();
    out.destroy();
    await rm(temp, { force: true }).catch(() => undefined);
    throw asEbrError(err, 'archive', { ...ctx, path: output });
  } finally {
    signal.removeEventListener('abort', onAbort);
    process.off('exit', removeOnExit);
  }
  await syncDir(path.dirname(output)).catch(async (err: unknown) => {
    await rm(output, { force: true }).catch(() => undefined);
    throw asEbrError(err, 'archive', { ...ctx, path: output });
  });
  return archive.pointer();
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function openTemp(temp: string, ctx: ErrorContext): Promise<FileHandle> {
  try {
    // 'wx': created here, never an existing file.
    return await open(temp, 'wx', 0o640);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const dir = path.dirname(temp);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new EbrError('usage', `cannot write the export into ${dir}: it does not exist`, { hint: 'create the directory first, or name another --output', context: { ...ctx, path: dir }, cause: err });
    throw new EbrError('archive', `cannot create a file in ${dir}: ${(err as Error).message}`, { hint: 'name an --output in a directory you can write', context: { ...ctx, path: dir }, cause: err });
  }
}

/** Without --force a hard link puts the file in place, failing if the name was taken meanwhile; --force renames over it. */
async function place(temp: string, output: string, force: boolean, ctx: ErrorContext): Promise<void> {
  if (force) return rename(temp, output);
  try {
    await link(temp, output);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new EbrError('usage', `${output} appeared while the export was written; ebr export does not overwrite it`, { hint: 'pass --force to replace it, or name another --output', context: { ...ctx, path: output } });
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    // A file system without hard links: check, then rename.
    await refuseExisting(output, false, ctx);
    return rename(temp, output);
  }
  await rm(temp);
}

function packer(archive: Archiver, failure: Promise<never>): Packer {
  // One entry at a time: resolves on archiver's 'entry' for it, rejects when its source or the archive fails.
  const append = (source: Buffer | Readable, data: EntryData & Record<string, unknown>): Promise<void> => {
    let onEntry!: () => void;
    let onError!: (err: Error) => void;
    const taken = new Promise<void>((resolve, reject) => {
      onEntry = resolve;
      onError = reject;
      archive.once('entry', onEntry);
      if (source instanceof Readable) source.once('error', onError);
      archive.append(source, data);
    });
    return Promise.race([taken, failure]).finally(() => {
      archive.off('entry', onEntry);
      if (source instanceof Readable) {
        source.off('error', onError);
        if (!source.readableEnded) source.destroy();
      }
    });
  };
  return {
    buffer: (name, data, date) => append(data, { name, date, mode: 0o644 }),
    file: (name, source, size, a) =>
      // objectMode off: the buffer is counted in bytes. `stats` with the size makes archiver's tar stream the entry instead of collecting it in memory.
      append(Readable.from(source, { objectMode: false, highWaterMark: 1 << 20 }), { name, date: a.date, mode: a.mode ?? 0o644, stats: { size } as Stats }),
    directory: (name, a) => append(Buffer.alloc(0), { name, type: 'directory', date: a.date, mode: a.mode ?? 0o755 }),
    symlink: (name, target, a) => append(Buffer.alloc(0), { name, type: 'symlink', linkname: target, date: a.date, mode: a.mode ?? 0o777 }),
  };
}
