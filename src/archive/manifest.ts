/** manifest.json: the last file of every backup, and the only proof that the backup is whole. */
import { createHash } from 'node:crypto';
import { blockDigestKinds, type BlockDigestKind } from './block-digests.js';
import type { BackupMeta } from '../model.js';
import type { StoredCodec } from './codec.js';
import type { StoredStream } from './coded-space.js';

export const manifestFormat = 1;

export interface ManifestMember {
  space: string;
  name: string;
  /** Live path at backup time; restore maps it to its destination. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  sha256: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  linkTarget?: string;
  /** Which stream of the archive holds it and at which byte its data starts. */
  stream: string;
  offset: number;
  /**
   * For a chunk that is a byte range of its file or device (Chunk.offset): where the range starts in
   * `path`. Named apart from `offset`, which is the member's place in the archive stream.
   */
  fileOffset?: number;
  details?: Record<string, unknown>;
  /** The digest (Manifest.blockDigest) of every block of the member's data (Manifest.blockSize each), base64, one after another (block-digests.ts). */
  blocks?: string;
  /**
   * In an incremental or differential backup: where each block of the file lies, as runs in block
   * order. A run without `backup` is in this member's own body, its blocks one after another in the
   * order the runs name them; a run with `backup` is blocks `at`… of that backup's body of the same
   * member, which holds them itself. Absent: the body is the whole file.
   */
  parts?: BlockRun[];
  /** The body as stored in this backup when it is not the whole file (only the changed blocks): its size and sha256. */
  body?: { size: number; sha256: string };
}

export interface BlockRun {
  /** The backup whose body holds these blocks; absent: this one. */
  backup?: string;
  /** Index of the run's first block within that body (blocks counted in the body, not the file). */
  at: number;
  /** Blocks in the run. */
  count: number;
}

/** What a member's body in its own archive stream is: the whole file, or (incremental) only its changed blocks. */
export function bodyOf(m: Pick<ManifestMember, 'size' | 'sha256' | 'body'>): { size: number; sha256: string } {
  return m.body ?? { size: m.size, sha256: m.sha256 };
}

export type BackupType = 'full' | 'incr' | 'diff';

export interface ManifestSpace {
  name: string;
  critical: boolean;
  kind: string;
  stream: string;
  /** The stream as stored (after compression and encryption): size and sha256, checked by verify and restore. */
  stored?: StoredStream;
  /** Where the stream lies on the target's media (tape volumes and file numbers), as the target reported it. */
  placement?: Record<string, unknown>;
  notes?: string[];
  details?: Record<string, unknown>;
}

export interface Manifest {
  format: number;
  backupId: string;
  instance: string;
  vendor: string;
  server: Record<string, unknown>;
  startedAt: string;
  finishedAt: string;
  blockWindowMs: number;
  /** Time spent in each step of acquire, in ms. */
  windowSteps: Record<string, number>;
  snapshotProvider: string;
  log: Pick<BackupMeta, 'logStart' | 'logEnd' | 'timeline'>;
  metaFiles: string[];
  /** How streams and meta files are stored (compression, encryption with the wrapped data key); absent: as they are. */
  codec?: StoredCodec;
  details?: Record<string, unknown>;
  /** Bytes per block of every member's `blocks`; absent: no block digests were recorded. */
  blockSize?: number;
  /** The digest of `blocks`; absent: sha256 (backups made before it was recorded). */
  blockDigest?: BlockDigestKind;
  /** full when absent. An incr's parent is the backup before it, a diff's the last full; `chain` every backup it reads blocks from. */
  type?: BackupType;
  parent?: string;
  chain?: string[];
  spaces: ManifestSpace[];
  members: ManifestMember[];
}

export function parseManifest(text: string, location: string): Manifest {
  const m = JSON.parse(text) as Manifest;
  if (m.format !== manifestFormat || !Array.isArray(m.members) || !Array.isArray(m.spaces)) {
    throw new Error(`${location}: not an ebr manifest of format ${manifestFormat}`);
  }
  if (m.blockDigest !== undefined && !blockDigestKinds.includes(m.blockDigest)) {
    throw new Error(`${location}: block digests of kind ${JSON.stringify(m.blockDigest)}, which this ebr does not know (it knows ${blockDigestKinds.join(', ')}): the backup was made by a newer ebr`);
  }
  return m;
}

/** The bytes of manifest.json, one serialization for every target, so the digest recorded at seal is the digest of the file. */
export function manifestText(m: Manifest): string {
  return `${JSON.stringify(m, null, 2)}\n`;
}

export function sha256Of(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A manifest as read from an archive, with the digest of its bytes, to be compared with the catalog's record. */
export interface ReadManifestFile {
  manifest: Manifest;
  sha256: string;
}
