/**
 * How storage is frozen. A provider turns the live chunk files into a frozen copy inside the window
 * and hands back where each chunk can be read afterwards. Providers know nothing of databases.
 */
import type { Chunk, Volume } from '../model.js';

/**
 * Something a provider created that must be removed again (a staging directory, a btrfs snapshot).
 * The workflow journals each one before it is created, so that the next ebr run can remove what a
 * crashed run left behind, and nothing else.
 */
export interface SnapshotResource {
  provider: string;
  kind: string;
  path: string;
  details?: Record<string, unknown>;
}

export interface ResourceJournal {
  /** Records the resource before it is created. */
  created(resource: SnapshotResource): void;
  /** Records that it is gone. */
  removed(resource: SnapshotResource): void;
}

export interface SnapshotRequest {
  backupId: string;
  chunks: Chunk[];
  volumes: Volume[];
  journal: ResourceJournal;
  /**
   * A chunk file that is gone when the snapshot is taken is left out instead of failing the snapshot
   * (the adapter's capabilities.chunksMayVanish). Its pathOf then names a path that does not exist.
   */
  mayVanish?: boolean;
}

export interface Snapshot {
  /**
   * After unblock and before the first pathOf: work that makes the frozen copy readable but need not
   * hold the database (mounting LVM snapshots). Providers whose snapshot is readable at once omit it.
   */
  open?(signal: AbortSignal): Promise<void>;
  /** Where the frozen copy of a chunk can be read (after open, when the provider has one). */
  pathOf(chunk: Chunk): string;
  /** Removes what take created; safe to call twice. */
  release(): Promise<void>;
  /** Time spent per step inside take, in ms, for the window breakdown. */
  readonly steps?: Record<string, number>;
}

export interface SnapshotProvider {
  readonly kind: string;
  /** Outside the window: checks that every chunk can be frozen this way; throws naming the chunk and volume. */
  check(request: Omit<SnapshotRequest, 'journal'>, signal: AbortSignal): Promise<void>;
  /** Inside the window: must be fast. Honours the signal between steps. */
  take(request: SnapshotRequest, signal: AbortSignal): Promise<Snapshot>;
  /** Removes a resource that a crashed run left behind (from the journal). */
  removeLeftover(resource: SnapshotResource): Promise<void>;
}

export interface SnapshotSettings {
  provider: string;
  /** Where copy/reflink put their frozen copies. */
  staging?: string;
  [key: string]: unknown;
}
