/**
 * The export's file: archiver's zip or tgz written to a new temporary file beside the output and moved
 * into place only once archiver finished and the file is fsynced; removed on any failure or signal.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, type Stats } from 'node:fs';
import { link, lstat, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Archiver, EntryData } from 'archiver';
import { syncDir } from '../archive/backup-dir.js';
import { EbrError, asEbrError, throwIfAborted, type ErrorContext } from '../errors.js';

export const exportFormats = ['zip', 'tgz'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/** zlib's default, which `zip` and `gzip` use too: the archive is for people, not the hot path. */
const compressionLevel = 6;

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

export async function refuseExisting(output: string, force: boolean, ctx: ErrorContext): Promise<void> {
  const st = await lstat(output).catch(() => undefined);
  if (!st) return;
  if (!force) throw new EbrError('usage', `${output} already exists; ebr export does not overwrite it`, { hint: 'pass --force to replace it, or name another --output', context: { ...ctx, path: output } });
  if (!st.isFile()) throw new EbrError('usage', `${output} exists and is not a regular file; --force replaces only files`, { hint: 'name another --output', context: { ...ctx, path: output } });
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
  // archiver loads only when an export runs.
  const { TarArchive, ZipArchive } = await import('archiver');
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
