/**
 * Where archives go. A target stores one backup as the layout of the design: manifest.json written
 * last, meta/ files, and one stream per space. Targets know nothing of databases.
 */
import type { LogStore } from '../logs/log-store.js';
import type { Codec } from './codec.js';
import type { StoredStream } from './coded-space.js';
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
  /** Flushes and makes the stream durable; `stored` is what reached the medium (after the codec), where the target can tell. */
  close(): Promise<ClosedSpace>;
  /**
   * True when addFile is done with each buffer of its source by the time it asks the source for the one
   * after next (bytes go straight to a sink that releases them on its next write): the source may then
   * read into a ring of reused buffers.
   */
  readonly takesTransient?: boolean;
}

export interface ClosedSpace {
  /** The stream's name in the archive (recorded in the manifest). */
  file: string;
  /** Bytes of the tar stream (before the codec). */
  bytes: number;
  /** What reached the medium: size and sha256 after the codec. */
  stored?: StoredStream;
  /** Where the stream lies on media that have places (tape volumes and file numbers); handed back to readSpace. */
  placement?: Record<string, unknown>;
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
  /** One space's stream, its bytes encoded by `codec` (compression, encryption) on the way to the medium. */
  openSpace(space: string, codec?: Codec): Promise<SpaceWriter>;
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
  /**
   * Reads one space's stream from its start, without reading the other spaces, decoded by `codec`. With
   * `stored` (the manifest's record), the stored bytes are checked too, at the end of the stream.
   */
  readSpace(space: string, signal: AbortSignal, options?: ReadSpaceOptions): AsyncIterable<ReadMember>;
}

export interface ReadSpaceOptions {
  codec?: Codec;
  /** The manifest's record of the stored stream, checked at its end. */
  stored?: StoredStream;
  /** What close() gave as the space's placement, from the manifest. */
  placement?: Record<string, unknown>;
  /**
   * The caller is done with each body piece before it asks for the second piece after it (it hashes
   * the piece and writes it with at most one write in flight, never keeping it): a target may then
   * read into buffers it uses again, which is much cheaper than fresh memory for every chunk.
   */
  transient?: boolean;
}

export interface ArchiveTarget {
  readonly kind: string;
  /** Spaces must be written one after another (a tape drive); parallel streams are for random-access media. */
  readonly sequential?: boolean;
  /**
   * Reading needs a medium loaded by hand or by a robot (a real tape drive): commands that merely
   * tidy up (crash recovery) never read it, so they never ask for a cartridge.
   */
  readonly offline?: boolean;
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
  /** The log archive beside the backups, for one instance and one log kind (WAL, binlogs…); absent when the target cannot hold one. */
  logStore?(instance: string, kind: string): LogStore;
}

export interface TargetSettings {
  type: string;
  /** Local targets' directory; remote ones (s3) have other keys, checked by their own schema. */
  path?: string;
  [key: string]: unknown;
}
