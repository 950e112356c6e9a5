/**
 * The seam between ebr and a DBMS. One folder under adapters/ implements this for one vendor, and
 * adapters/index.ts registers it. Adapters know nothing of archives, targets or the CLI.
 */
import type { z } from 'zod';
import type { LogStore } from './logs/log-store.js';
import type { BackupMeta, Chunk, Space } from './model.js';

/** What an adapter can do; the workflow asks these instead of asking which vendor it talks to. */
export interface AdapterCapabilities {
  /**
   * The block is server state that outlives the ebr process (Oracle BEGIN BACKUP, Informix block):
   * the workflow journals it first and arms a watchdog. False when the DBMS drops the block with the session.
   */
  blockSurvivesSession: boolean;
  /** Partial restore works while the server runs (InnoDB import); otherwise the server must be stopped. */
  onlinePartialRestore: boolean;
  /**
   * The log kind this adapter archives for roll-forward, if any: its own name ('wal', 'binlog', 'redo',
   * 'logbackup'), used as the log archive's directory and by `ebr log`. Nothing outside the adapter
   * knows what the name means.
   */
  logArchive?: string;
  /** `--until TIME` is supported by restore. */
  pointInTimeRestore: boolean;
  /**
   * The backup is consistent as of unblock, not of the freeze: writers went on inside the window and
   * the log up to unblock makes the frozen files consistent (PostgreSQL's pg_backup_stop). In a
   * consistency group such members are released first, while the others still hold their writers.
   */
  consistentAtUnblock?: boolean;
  /** Restore can stop at the backup's own consistency point instead of replaying every archived log (RestorePlan.toBackupEnd). */
  restoreToBackupEnd?: boolean;
  /**
   * Chunk files may vanish between discovery and the snapshot without harm (PostgreSQL: a dropped
   * relation's file is unlinked at the next checkpoint, and WAL replay drops it anyway). A missing chunk
   * is then left out of the backup instead of failing it, as pg_basebackup skips vanished files.
   */
  chunksMayVanish?: boolean;
}

/** One instance as configured, handed to the adapter with only its own slice of settings. */
export interface InstanceContext<S = unknown> {
  name: string;
  /** The adapter's own settings, already validated by its configSchema. */
  settings: S;
  /** Resolves a path from the config file relative to the config file's directory. */
  resolvePath(p: string): string;
  /** The config file the instance came from, for commands the DBMS runs back into ebr (archive_command, restore_command). */
  configFile?: string;
  /** The instance's log archive, for adapters that keep one (capabilities.logArchive). */
  logStore?(kind: string): LogStore;
  /**
   * The argv that runs this ebr (absolute node and entry paths, this config file) with the given
   * arguments: for commands a server runs back into ebr (archive_command) and for releaseCommand.
   */
  ebrArgv?(args: string[]): string[];
}

/**
 * One thing ebr would do, as `--dry-run` prints it: a statement sent on the adapter's session, a
 * command run, a file read or written. The statement-level tests compare what a server (or its
 * stand-in) was really sent with these, so a plan must list exactly what the real run sends, in order.
 */
export interface PlanStep {
  /** connect, discover, checkpoint, acquire, release, after-release, stream, check, restore, finish … */
  phase: string;
  kind: 'sql' | 'command' | 'read' | 'write' | 'note';
  text: string;
}

/** What `ebr log <verb>` (and its aliases such as `ebr wal`) does for the adapter's log kind. */
export interface LogCommands<S = unknown> {
  /** Command names users already configured: `ebr wal push` is `ebr log push` for this kind. */
  aliases?: string[];
  /** One line for --help: what the log is and who hands it to ebr. */
  summary: string;
  /** The server hands over one finished log (archive_command); quiet on success. */
  push?(instance: InstanceContext<S>, file: string, signal: AbortSignal): Promise<'stored' | 'identical'>;
  /** One log back by name, digest checked, into dest; false when the archive does not have it. */
  get?(instance: InstanceContext<S>, name: string, dest: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Copies the logs the server has finished into the log archive (MariaDB binlogs, SQL Server log
   * backups): for logs the server does not push by itself. Run by `ebr log sync` and on logSchedule.
   */
  sync?(instance: InstanceContext<S>, signal: AbortSignal): Promise<LogSyncResult>;
  /** What the archive holds, as a table (and as the rows of `--json`). */
  list?(instance: InstanceContext<S>, signal: AbortSignal): Promise<LogListing>;
  /**
   * Which archived logs retained backups need and whether the archive continues without a gap: what
   * `ebr log purge`, retention and `ebr verify` ask. Without it the archive is never purged (purge
   * refuses, saying so) and verify does not check the chain.
   */
  lifecycle?: import('./logs/log-lifecycle.js').LogLifecycle<S>;
}

export interface LogListing {
  columns: string[];
  rows: Array<Array<string | number>>;
  /** The same, as objects, for `--json`. */
  json: unknown[];
}

export interface DbmsAdapter<S = unknown> {
  readonly vendor: string;
  readonly capabilities: AdapterCapabilities;
  /** Validates the adapter's key in an instance's config (e.g. `sqlite: {…}`). */
  readonly configSchema: z.ZodType<S>;
  /** Opens the dedicated session that discovers, blocks and unblocks. Drivers are imported here, lazily. */
  connect(instance: InstanceContext<S>, signal: AbortSignal): Promise<DbmsSession>;
  /** `ebr log` for the adapter's log kind (capabilities.logArchive). */
  readonly logs?: LogCommands<S>;
  /** Prepares a restore of one backup; the server may be stopped, so this must not need a session. */
  restorer(instance: InstanceContext<S>, plan: RestorePlan): Promise<Restorer>;
  /**
   * `ebr backup --dry-run`: every statement and command the adapter's session would send, phase by
   * phase in the order the workflow calls it (connect, discover, checkpoint, acquire, release,
   * after-release), for these spaces. Connects to nothing.
   */
  planBackup(instance: InstanceContext<S>, spaces: Space[]): PlanStep[];
  /**
   * Splitting a mirror (`snapshot.provider: replica`): the backup runs on a replica of the instance,
   * which is paused while its files are frozen and resynced afterwards; the primary is never blocked.
   */
  readonly mirror?: MirrorSupport<S>;
  /**
   * For adapters whose block outlives the session: ends a block that a dead ebr left on the server
   * (Oracle backup mode still ACTIVE, Informix still blocked), on a session of its own. Safe when
   * nothing is blocked. `ebr release --instance N` runs it; a releaseCommand may be that command.
   */
  endBlock?(instance: InstanceContext<S>, signal: AbortSignal): Promise<'ended' | 'none'>;
  /**
   * `ebr drill`: proves a restored copy works by the DBMS's own means. Called after the backup was
   * restored into `copy.dir` (as `ebr restore --to` does, finish included): starts the DBMS on it where
   * it can (a temporary server on a private socket, never on the live instance's port or files),
   * replays the log archive to its end, runs the DBMS's own checks, and stops it again, also when a
   * check fails or the signal aborts. A failed check is a result (ok: false), not a throw; throwing
   * means the drill could not run at all (the server would not start). Adapters without it get a
   * drill that reads back every digest and reports that no DBMS check ran.
   */
  drill?(instance: InstanceContext<S>, copy: RestoredCopy, signal: AbortSignal): Promise<DrillReport>;
  /**
   * For `ebr status` and the metrics: the log the server writes now against the newest one in the log
   * archive (capabilities.logArchive), and how many the server finished that the archive lacks.
   * Connects to the server, bounded by the signal; a server that cannot be reached is an error here.
   */
  logLag?(instance: InstanceContext<S>, signal: AbortSignal): Promise<LogLag>;
}

/** How far the log archive is behind the server. */
export interface LogLag {
  /** The log the server writes now. */
  current: string;
  /** The newest log the archive holds, in the server's order. */
  newestArchived?: string;
  /** Logs the server finished that the archive does not hold yet; absent when the archive holds none to count from. */
  behind?: number;
  /** The server's own record of its last failure to hand a log over, when newer than its last success. */
  failing?: { log: string; at: string };
}

/** A restored copy handed to DbmsAdapter.drill. */
export interface RestoredCopy {
  /** The --to directory the backup was restored into (the data directory of the copy). */
  dir: string;
  /** The plan the restore ran (spaces, meta, mode), as the adapter's restorer got it. */
  plan: RestorePlan;
  /** What the restorer's finish returned (its details: logs it replayed, integrity checks it ran). */
  restored: RestoreOutcome;
  /** A private, empty directory for the drill's own files (socket, server log, pid file); removed with the copy. */
  scratch: string;
  /** Called with the pid of any server the drill starts, so a dead ebr's drill server can be ended. */
  onSpawn?(pid: number): Promise<void>;
}

/** One check of a drill: what ran, whether it passed, what the DBMS said. */
export interface DrillCheck {
  /** `PRAGMA integrity_check on main`, `pg_amcheck --all --heapallindexed`, `CHECK TABLE (12 tables of shop)`. */
  name: string;
  ok: boolean;
  /** What the DBMS answered, shortened: `ok`, or the first lines of what it found. */
  detail: string;
}

export interface DrillReport {
  checks: DrillCheck[];
  /** Time from starting the DBMS on the copy until it had replayed the logs and opened. */
  recoverMs?: number;
  /** The logs replayed onto the copy: how many, the first and last by name, and where replay ended. */
  logApplied?: { count: number; first?: string; last?: string; endedAt?: string };
  /** Lines for the user. */
  notes: string[];
}

export interface LogSyncResult {
  /** Logs archived by this call. */
  stored: string[];
  /** Already archived with the same bytes. */
  present: string[];
  /** The log the server still writes (archived by a later sync). */
  current?: string;
  /** Logs missing between the oldest archived one and the current one: the server purged them first. */
  gaps: string[];
}

/** A token proving the window is open; handed back to unblock on the same session. */
export interface BlockToken {
  readonly blockedAt: number;
  readonly details?: Record<string, unknown>;
  /**
   * The spaces as they are once the window is open, for a DBMS whose backup start decides which files
   * belong to the backup (PostgreSQL lists files after pg_backup_start, as pg_basebackup does: a table
   * created between discovery and the start would otherwise be missing, and WAL replay starts after it).
   * When present, the snapshot and the stream use these instead of what discover returned.
   */
  readonly spaces?: Space[];
}

/** The replica to split, as `snapshot:` configured it. */
export interface MirrorContext<S = unknown> {
  /** The adapter's own settings for the replica: `snapshot.replica` over the instance's settings. */
  settings: S;
  /** wait: the backup ends once the replica has caught up; background: it ends once the replica is resumed. */
  resync: 'wait' | 'background';
  /** A replica further behind its primary than this is refused before the split. */
  maxLagMs: number;
}

export interface MirrorSupport<S = unknown> {
  /**
   * A session on the replica. Before anything is split it checks that the replica mirrors this
   * instance (replicating from it, within maxLagMs, not paused by someone else). Its block splits the
   * mirror (replay paused, backup mode on the replica), its unblock resyncs it, and its afterRelease
   * reports the split and the catch-up (and waits for it under resync: wait). A split outlives the
   * session, so the session says blockSurvivesSession and gives a releaseCommand.
   */
  connect(instance: InstanceContext<S>, replica: MirrorContext<S>, signal: AbortSignal): Promise<DbmsSession>;
  /** Resumes a split that a dead ebr left on the replica; safe when nothing is split. */
  endSplit(instance: InstanceContext<S>, replica: MirrorContext<S>, signal: AbortSignal): Promise<'ended' | 'none'>;
  /** `ebr backup --dry-run` for a split: the statements on the replica and on the primary, in order. */
  planBackup(instance: InstanceContext<S>, replica: MirrorContext<S>, spaces: Space[]): PlanStep[];
}

/** What the gate knows when it unblocks. */
export interface UnblockOutcome {
  /**
   * The window failed (the snapshot failed, timed out or was cancelled): the backup will be failed, so
   * unblock should only end the block, not record a backup on the server (SQL Server's BACKUP …
   * METADATA_ONLY would enter one into msdb for a snapshot that does not exist).
   */
  failed?: Error;
}

export interface DbmsSession extends AsyncDisposable {
  /** Server version and identity, stored with the backup. */
  describe(): Promise<Record<string, unknown>>;
  /** Lists every space with its chunks and the critical flag. Outside the window. */
  discover(signal: AbortSignal): Promise<Space[]>;
  /** Checks that backups can be taken at all (log archiving set up, privileges); throws with a hint. */
  preflight?(signal: AbortSignal): Promise<void>;
  /** Slow work before the window (checkpoint, flush) so the window stays short. */
  checkpoint(signal: AbortSignal): Promise<void>;
  /** Enters the window: writes held or backup mode on. Called once, only by the block-window gate. */
  block(signal: AbortSignal): Promise<BlockToken>;
  /**
   * Leaves the window on the same session as block. Must work even when the backup failed or was
   * cancelled; it gets no signal on purpose, the gate bounds it with its own timeout.
   */
  unblock(token: BlockToken, outcome?: UnblockOutcome): Promise<BackupMeta>;
  /**
   * For adapters whose block outlives the session (capabilities.blockSurvivesSession): the argv that
   * ends the block from another process (e.g. `onmode -c unblock`). It must be safe to run when nothing
   * is blocked, and carry no secret (it is journaled). The watchdog runs it if ebr cannot unblock in time.
   */
  releaseCommand?(): string[];
  /**
   * A DBMS whose freeze ends with the session (SQL Server SUSPEND_FOR_SNAPSHOT_BACKUP): the error that
   * ended the session, if it did. The gate asks after the snapshot and fails the backup instead of
   * keeping a snapshot taken while writes went on.
   */
  lost?(): Error | undefined;
  /**
   * Work after release that the backup needs before it can be sealed (wait for the last WAL segment,
   * a mirror's resync). What it returns is added to the backup's details (the resync's figures).
   */
  afterRelease?(meta: BackupMeta, signal: AbortSignal, progress?: (done: number, total: number) => void): Promise<void | Record<string, unknown>>;
  /**
   * The block outlives this session even though the adapter's does not in general (a split mirror:
   * paused replay is server state): the gate journals it and arms a watchdog, as for
   * capabilities.blockSurvivesSession.
   */
  readonly blockSurvivesSession?: boolean;
}

/** A chunk as recorded in an archive's manifest. */
export interface ArchivedChunk extends Chunk {
  sha256: string;
}

export interface RestorePlan {
  backupId: string;
  instance: string;
  mode: 'full' | 'partial';
  /** Spaces the user asked for (all of them for a full restore). */
  requested: string[];
  /** Every space in the backup, with its chunks as archived. */
  spaces: Array<Omit<Space, 'chunks'> & { chunks: ArchivedChunk[] }>;
  /** --to DIR: restore into an alternate location instead of the instance's own paths. */
  targetDir?: string;
  /** --until: roll forward to this time. */
  until?: Date;
  /**
   * Roll forward no further than the backup's own consistency point (a consistency group's restore:
   * every member at the group's instant, not at the end of its log archive). Only asked of adapters
   * with capabilities.restoreToBackupEnd.
   */
  toBackupEnd?: boolean;
  /**
   * --delta: ebr compares the files already at the destinations with the backup and writes only what
   * differs, so a --to directory may hold an earlier restore of this instance (what the backup does not
   * hold is the adapter's to set aside, as in place).
   */
  delta?: boolean;
  /** What the DBMS handed back at unblock (meta/ files decoded, log positions). */
  meta: BackupMeta;
}

export interface RestoreOutcome {
  /** Lines for the user: what was done, what to do next. */
  notes: string[];
  details?: Record<string, unknown>;
}

export interface Restorer {
  /**
   * The spaces whose files are written. Defaults to the requested ones; an adapter that needs more
   * (PostgreSQL needs the critical space with any database) widens the set here.
   */
  spacesToWrite?(requested: string[]): string[];
  /**
   * Directories beside the restored ones that the adapter writes into for the user's sake (where it
   * keeps files it moved out of the way). Every other write must land inside --to DIR or, in place,
   * inside the directories recorded at discovery.
   */
  extraRoots?(): string[];
  /**
   * `ebr restore --dry-run`: every statement and command check and finish would run, and the files
   * finish would write, in order. Runs and connects to nothing.
   */
  plan(signal: AbortSignal): Promise<PlanStep[]>;
  /** Checks before anything is written: server stopped or files not in use. Throws with a hint. */
  check(signal: AbortSignal): Promise<void>;
  /** Where one chunk goes (the live path, or under --to DIR). */
  destinationOf(chunk: ArchivedChunk): string;
  /**
   * Files beside a destination that belong to its old contents (SQLite's -wal, -shm, -journal): they are
   * moved aside with it, so the old ones never meet the new file, and put back if the restore fails.
   */
  sideFilesOf?(destination: string): string[];
  /**
   * After every file is verified and renamed into place: labels, recovery settings, roll-forward.
   * Every change it makes to the restored directories goes through `files`, which journals it first:
   * if finish fails, or ebr dies during it, every change is undone and the old files are put back.
   */
  finish(signal: AbortSignal, files: RestoreFiles): Promise<RestoreOutcome>;
  /**
   * After a failed restore, once every file is back as it was: undoes what check or finish did to the
   * server itself (a tablespace taken offline, a database set offline). Returns what it could not undo,
   * for the user. Not run when ebr is killed: the next command puts the files back, and the adapter's
   * docs say how to bring the object back by hand.
   */
  undo?(signal: AbortSignal): Promise<string[]>;
}

/** File attributes as the backup recorded them; ownership is applied only when ebr runs as root. */
export interface FileAttributes {
  mode?: number;
  uid?: number;
  gid?: number;
}

/**
 * The only way a restorer's finish step changes files. Each call is journaled in the catalog before it
 * acts, checked to stay inside the restore's directories, and never follows a symbolic link; the
 * journal undoes it (newest first) if the restore fails or its process dies, and the old contents set
 * aside are removed only once the whole restore succeeded.
 */
export interface RestoreFiles {
  /** Writes a whole file (set aside what was there), fsynced, with the given attributes (default 0600). */
  writeFile(file: string, data: string | Buffer, attrs?: FileAttributes): Promise<void>;
  /** A zero-filled file of `size` bytes that takes no blocks (placeholders for what was not chosen). */
  writeSparse(file: string, size: number, attrs?: FileAttributes): Promise<void>;
  /** A directory and its missing parents; an existing directory only gets the attributes. */
  mkdir(dir: string, attrs?: FileAttributes): Promise<void>;
  /** A symbolic link (set aside what was there). */
  symlink(target: string, link: string, attrs?: FileAttributes): Promise<void>;
  /**
   * Moves a file or directory out of the way (renamed beside itself, or to `as` in the same directory).
   * Removed when the restore succeeds, unless `keep`: then it stays for the user and is returned.
   */
  setAside(p: string, o?: { keep?: boolean; as?: string }): Promise<string>;
  /** Changes mode and owner of an existing entry (the old ones are journaled). */
  setAttributes(p: string, attrs: FileAttributes): Promise<void>;
  /**
   * Remembers what a directory holds now; if the restore is undone, whatever appeared in it since
   * (files a temporary server created) is removed. Only for directories the restore owns.
   */
  track(dir: string): Promise<void>;
  /**
   * A process the finish step started on the restored files (a temporary server): if ebr dies, the
   * next command ends it (SIGKILL, after checking it is still that process) before undoing anything.
   */
  ownProcess(pid: number): Promise<void>;
  /** Asks whether p may be written by this restore (inside its directories); throws with the reason if not. */
  check(p: string): Promise<void>;
}

export type { BackupMeta, Chunk, Space } from './model.js';
