/**
 * `ebr export`: the verified files of one backup packed into one portable archive (zip, or tar with
 * gzip) for another team or machine. Every member is read back from the target and its digest checked
 * on the way into the archive; the archive is written to a temporary file beside its final name and
 * renamed into place only once every digest matched, the archive is finished and the file is on disk.
 * A damaged member, an error or a signal leaves no file. archiver writes these formats; backups keep
 * ebr's own tar writer (bench/tar-vs-archiver.ts measures why).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ArchiveReader } from '../archive/archive-target.js';
import { codecForReading } from '../archive/codec/index.js';
import { spaceReadOptions } from '../archive/coded-space.js';
import { manifestText, type Manifest, type ManifestMember } from '../archive/manifest.js';
import { findBackup, type BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { membersOf } from '../catalog/discovery.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted, type ErrorContext } from '../errors.js';
import { trustedManifest, trustedMetaFiles } from './archive-trust.js';
import { chooseSpaces } from './choose-spaces.js';
import { targetOf } from './context.js';
import { exportFormats, refuseExisting, writeAtomically, type Attrs, type ExportFormat, type Packer } from './export-file.js';

export { exportFormats, writeAtomically, type ExportFormat };

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
  const spaces = chooseSpaces(manifest, o.partial, ctx, { refuseCritical: false });
  const members = manifest.members.filter((m) => spaces.includes(m.space));
  checkEntryNames(manifest, members, ctx);
  await refuseExisting(output, o.force ?? false, ctx);
  // A missing or wrong key fails here, before the output is written.
  const codec = await codecForReading(manifest.codec, o.instance);
  const meta = new Map(Object.entries(await trustedMetaFiles(reader, manifest, backup, codec, ctx, `no export was written; the archive was edited or damaged after the backup — run \`ebr verify ${backup.id}\`, and export another backup (\`ebr list\`)`)));
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
  if (backup.type === 'incr' || backup.type === 'diff') {
    // Its files lie in the bodies of several backups; export packs one backup's streams as they are.
    throw new EbrError('usage', `backup ${backup.id} is ${backup.type === 'incr' ? 'incremental' : 'differential'}: its files are assembled from the blocks of several backups, which export does not do`, {
      hint: `export a full backup, or restore this one with \`ebr restore --backup ${backup.id} --to DIR\` and pack DIR`,
      context: { instance, backupId: backup.id },
    });
  }
  return backup;
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
