/**
 * The nouns every part of ebr shares: spaces and their chunks as the adapter discovers them,
 * and what the DBMS hands back when the window closes.
 */

export type ChunkType = 'file' | 'directory' | 'symlink';

/** One physical piece of a space: a file (or a directory or symlink the DBMS needs to exist). */
export interface Chunk {
  /** The space this chunk belongs to. */
  space: string;
  /**
   * Name inside the archive: relative, '/'-separated, unique within one backup. Adapters use the path
   * relative to the directory that holds it (e.g. `base/16384/16397`, `shop.db`).
   */
  name: string;
  /** Absolute path on the live system. */
  path: string;
  type: ChunkType;
  /** Bytes at discovery; the archive records the size actually streamed. With `offset`, the range's length. */
  size: number;
  /**
   * Bytes into `path` where this chunk starts, when it is a byte range of a file or device rather than the
   * whole of it (an Informix chunk at an offset of a raw device). Absent: the whole file. A range is read
   * as exactly `size` bytes from here, and restored by writing those bytes back at the same offset: the
   * rest of the file or device is never truncated or replaced.
   */
  offset?: number;
  /** For symlinks: the link target, recorded, never followed. */
  linkTarget?: string;
  /** Permission bits, owner and group on the live system; restore puts them back. */
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  /** Vendor details stored in the discovery table (e.g. relfilenode, InnoDB space id). */
  details?: Record<string, unknown>;
}

/** The smallest unit the DBMS can restore on its own. */
export interface Space {
  name: string;
  /** A space the server cannot start without: never restored partially. */
  critical: boolean;
  /** What the DBMS calls it: `database`, `tablespace`, `attached database`, `schema`… */
  kind: string;
  chunks: Chunk[];
  /** Remarks shown by `ebr spaces` (e.g. non-InnoDB tables in a schema). */
  notes?: string[];
  details?: Record<string, unknown>;
}

/** What the DBMS handed back when the window closed. */
export interface BackupMeta {
  /** Files for the archive's meta/ directory (backup_label, tablespace_map, binlog position…). */
  files?: Record<string, string | Buffer>;
  /** Log position where roll-forward must start and the first position that is consistent. */
  logStart?: string;
  logEnd?: string;
  timeline?: number;
  /** Anything else the adapter wants in the catalog and manifest. */
  details?: Record<string, unknown>;
}

/** A filesystem that holds chunks, as found from the mount table. */
export interface Volume {
  /** Mount point (the root of the filesystem as mounted). */
  mountPoint: string;
  fsType: string;
  device: string;
  /** `major:minor` of the device, as in /proc/self/mountinfo. */
  deviceId: string;
  /** The part of the filesystem mounted at mountPoint (btrfs subvolume path, bind mount root). */
  root: string;
}
