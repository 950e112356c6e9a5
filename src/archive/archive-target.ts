/**
 * Where archives go. A target stores one backup as the layout of the design: manifest.json written
 * last, meta/ files, and one stream per space. Targets know nothing of databases.
 */
import type { Manifest, ReadManifestFile } from './manifest.js';

export interface BackupRef {
  instance: string;
  backupId: string;
}

/** One backup's archive as a target lists it (`ebr catalog rebuild` reads the catalog back from these). */
export interface ListedArchive {
  backupId: string;
  /** Human-readable location (a path or URL), as ArchiveWriter.location gave it. */
  location: string;
  /** manifest.json's bytes as stored, or undefined when there is none (an archive that never completed). */
  manifestBytes(): Promise<Buffer | undefined>;
}

/** A member of a space stream: a chunk's file, directory or symlink with its attributes. */
export interface MemberHeader {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  size: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  linkTarget?: string;
}

export interface WrittenMember {
  name: string;
  size: number;
  sha256: string;
  /** Where the member's data starts within the space stream (bytes), for seeking. */
  offset: number;
}

export interface SpaceWriter {
  /** Streams one file's bytes; the digest is computed while they are written. Exactly header.size bytes. */
  addFile(header: MemberHeader, source: AsyncIterable<Buffer>, signal: AbortSignal): Promise<WrittenMember>;
  addEntry(header: MemberHeader): Promise<WrittenMember>;
  /** Flushes and fsyncs the stream. */
  close(): Promise<{ file: string; bytes: number }>;
}

/** Space left on a target for a writer like ebr, and where it was measured. */
export interface FreeSpace {
  /** The path (or URL) that was asked. */
  path: string;
  freeBytes: number;
}

export interface ArchiveWriter {
  /** Human-readable location (a path or URL) of this backup's archive. */
  readonly location: string;
  /** Space left for this archive now; undefined when the target cannot tell (or is gone). */
  freeSpace?(): Promise<FreeSpace | undefined>;
  /** Bytes of this archive that reached the target so far (not those still buffered). */
  bytesWritten?(): number;
  openSpace(space: string): Promise<SpaceWriter>;
  writeMeta(name: string, data: string | Buffer): Promise<void>;
  /** Written last, atomically: a backup without a manifest is not complete. */
  writeManifest(manifest: Manifest): Promise<void>;
  /** Removes everything written so far (a failed backup leaves no half archive that looks whole). */
  abort(): Promise<void>;
}

export interface ReadMember {
  header: MemberHeader;
  /** The member's bytes; read it to the end (or not at all) before asking for the next member. */
  body: AsyncIterable<Buffer>;
}

export interface ArchiveReader {
  readonly location: string;
  readManifest(): Promise<Manifest>;
  /** The manifest with the sha256 of its bytes as stored, read once (restore and verify compare it with the catalog). */
  readManifestFile(): Promise<ReadManifestFile>;
  readMeta(name: string): Promise<Buffer>;
  /** Reads one space's stream from its start, without reading the other spaces. */
  readSpace(space: string, signal: AbortSignal): AsyncIterable<ReadMember>;
}

export interface ArchiveTarget {
  readonly kind: string;
  /** Starts a new backup's archive; refuses if one already exists under that id. */
  create(ref: BackupRef): Promise<ArchiveWriter>;
  open(ref: BackupRef): Promise<ArchiveReader>;
  /** Removes a backup's archive (retention, and what a failed or crashed backup left); a missing one is no error. */
  remove(ref: BackupRef): Promise<void>;
  /** The archives stored for an instance, by backup id (none when it has none); targets that cannot list omit it. */
  list?(instance: string): Promise<ListedArchive[]>;
  /** Where create would put this backup, known before it is created (the crash journal records it). */
  locationOf?(ref: BackupRef): string;
  /** Space a new archive could use, asked before the window; undefined when the target cannot tell. */
  freeSpace?(ref: BackupRef): Promise<FreeSpace | undefined>;
}

export interface TargetSettings {
  type: string;
  path: string;
  [key: string]: unknown;
}
