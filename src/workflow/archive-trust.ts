/**
 * The catalog vouches for the archive. An archive is only files on a target: anyone who can write
 * there can edit manifest.json (a member's path, size, digest) or a meta file. What the catalog
 * recorded when the backup was sealed — the manifest's sha256, each member's size and sha256, each
 * chunk's path at discovery, each meta file's sha256 — is compared with what the archive says before a
 * restore or verify trusts it; any difference is named, member by member.
 */
import type { ArchiveReader } from '../archive/archive-target.js';
import type { Codec } from '../archive/codec.js';
import type { Manifest } from '../archive/manifest.js';
import { sha256Of, type ReadManifestFile } from '../archive/manifest.js';
import type { BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { discoveryOf, membersOf } from '../catalog/discovery.js';
import { EbrError } from '../errors.js';
import { checkMemberName } from './restore-paths.js';

export interface TrustProblem {
  space: string;
  member: string;
  problem: string;
}

/** Every way the manifest disagrees with the catalog (empty when it agrees). */
export function manifestProblems(cat: Catalog, backup: BackupRow, file: ReadManifestFile): TrustProblem[] {
  const m = file.manifest;
  const problems: TrustProblem[] = [];
  const whole = (problem: string) => problems.push({ space: '(manifest)', member: 'manifest.json', problem });
  if (m.backupId !== backup.id || m.instance !== backup.instance) {
    whole(`the manifest is of backup ${m.backupId} of instance ${m.instance}, not of ${backup.id} of ${backup.instance}`);
  }
  const recorded = new Map(membersOf(cat, backup.id).map((r) => [r.name, r]));
  const paths = new Map(discoveryOf(cat, backup.id).map((d) => [d.chunk, d]));
  const spaces = new Set(m.spaces.map((s) => s.name));
  const seen = new Set<string>();
  for (const mm of m.members) {
    try {
      checkMemberName(mm.name, mm.space, {});
    } catch (err) {
      problems.push({ space: mm.space, member: mm.name, problem: (err as Error).message });
      continue;
    }
    if (seen.has(mm.name)) problems.push({ space: mm.space, member: mm.name, problem: 'listed twice in the manifest' });
    seen.add(mm.name);
    if (!spaces.has(mm.space)) problems.push({ space: mm.space, member: mm.name, problem: `belongs to space ${mm.space}, which the manifest does not list` });
    const r = recorded.get(mm.name);
    if (!r) {
      if (recorded.size > 0) problems.push({ space: mm.space, member: mm.name, problem: 'the catalog recorded no such member for this backup' });
    } else {
      if (r.space !== mm.space) problems.push({ space: mm.space, member: mm.name, problem: `the manifest puts it in space ${mm.space}, the catalog recorded space ${r.space}` });
      if (r.size !== mm.size) problems.push({ space: mm.space, member: mm.name, problem: `the manifest says ${mm.size} bytes, the catalog recorded ${r.size}` });
      if (r.sha256 !== mm.sha256) problems.push({ space: mm.space, member: mm.name, problem: `the manifest says sha256 ${mm.sha256}, the catalog recorded ${r.sha256}` });
    }
    const d = paths.get(mm.name);
    if (d && d.path !== mm.path) problems.push({ space: mm.space, member: mm.name, problem: `the manifest says path ${mm.path}, the catalog recorded ${d.path} at discovery` });
    // Where a byte range is written back comes from here: an edited offset would overwrite other bytes of the device.
    if (d && (mm.fileOffset ?? 0) !== d.offset) problems.push({ space: mm.space, member: mm.name, problem: `the manifest puts it at byte ${mm.fileOffset ?? 0} of ${mm.path}, the catalog recorded byte ${d.offset} at discovery` });
    if (d && d.type !== mm.type) problems.push({ space: mm.space, member: mm.name, problem: `the manifest says it is a ${mm.type}, the catalog recorded a ${d.type}` });
  }
  for (const [name, r] of recorded) {
    if (!seen.has(name)) problems.push({ space: r.space, member: name, problem: 'recorded in the catalog but missing from the manifest' });
  }
  if (backup.manifest_sha256 && backup.manifest_sha256 !== file.sha256) {
    whole(`manifest.json has sha256 ${file.sha256}, but the catalog recorded ${backup.manifest_sha256} when the backup was sealed: it was changed since`);
  }
  return problems;
}

/** The manifest, when it agrees with the catalog; otherwise a refusal naming the first disagreement. */
export function trustedManifest(cat: Catalog, backup: BackupRow, file: ReadManifestFile, ctx: Record<string, unknown>): Manifest {
  const problems = manifestProblems(cat, backup, file);
  // A member problem names the spot; the whole-file digest only says that something changed.
  const first = problems.find((p) => p.space !== '(manifest)') ?? problems[0];
  if (first) {
    throw new EbrError('digestMismatch', `the archive of backup ${backup.id} does not match the catalog: ${first.member === 'manifest.json' ? '' : `member ${first.member} of space ${first.space}: `}${first.problem}${problems.length > 1 ? ` (and ${problems.length - 1} more difference(s); \`ebr verify ${backup.id}\` lists them)` : ''}`, {
      hint: 'nothing was written; the archive was edited or damaged after the backup — restore another backup (`ebr list`)',
      context: { ...ctx, space: first.space, member: first.member },
    });
  }
  return file.manifest;
}

/** A meta file agrees with the digest the catalog recorded at seal (backups before schema 3 recorded none). */
export function metaProblem(backup: BackupRow, name: string, data: Buffer): string | undefined {
  if (!backup.meta_sha256) return undefined;
  const recorded = (JSON.parse(backup.meta_sha256) as Record<string, string>)[name];
  if (recorded === undefined) return `meta/${name} is not one of the meta files the catalog recorded`;
  const got = sha256Of(data);
  return got === recorded ? undefined : `meta/${name} has sha256 ${got}, but the catalog recorded ${recorded}`;
}

/**
 * The meta files of a backup, each checked against the catalog's digest of its stored bytes, then
 * decoded (small: held in memory). `hint` says what the caller did not do (nothing was written).
 */
export async function trustedMetaFiles(reader: ArchiveReader, manifest: Manifest, backup: BackupRow, codec: Codec, ctx: Record<string, unknown>, hint: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {};
  for (const name of manifest.metaFiles) {
    const data = await reader.readMeta(name).catch((err: Error) => {
      throw new EbrError('archive', `cannot read meta/${name} of backup ${backup.id}: ${err.message}`, { hint, context: { ...ctx, member: `meta/${name}` }, cause: err });
    });
    const problem = metaProblem(backup, name, data);
    if (problem) throw new EbrError('digestMismatch', `the archive of backup ${backup.id} does not match the catalog: ${problem}`, { hint, context: { ...ctx, member: `meta/${name}` } });
    files[name] = await codec.decodeBuffer(data, `meta/${name}`);
  }
  return files;
}
