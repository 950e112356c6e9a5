/**
 * Every file step of a restore, journaled in the catalog before it is taken, so that the restore is
 * all-or-nothing even when its process is killed: verified copies are staged beside their final names,
 * old files are renamed aside (never deleted) when the new ones go in, the adapter's finish changes
 * files only through this journal, and the old files are removed only after finish succeeded. Undo
 * walks the journal newest first; it reads the file system to see how far each step got, so it can run
 * again after a crash in the middle of itself.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lchown, lstat, mkdir, open, readdir, rename, stat, symlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileAttributes, RestoreFiles } from '../adapter-api.js';
import { syncDir } from '../archive/backup-dir.js';
import { copyWithDigest, type Digested } from '../archive/digest-copy.js';
import type { Catalog } from '../catalog/catalog.js';
import { journalOf, journalSteps } from '../catalog/restores.js';
import { faultPoint } from '../util/fault.js';
import { processStart } from '../util/runner.js';
import { exists, isRoot, setNoFollow, setOnHandle } from './no-follow.js';
import { isInside, type DestinationGuard } from './restore-paths.js';
import { placeRange, type RangeStep } from './restore-range.js';
import { commitJournal, undoJournal } from './restore-undo.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

export interface StagedFile {
  /** Verified copy beside its destination. */
  temp: string;
  dest: string;
  /** Files that belong to the old dest and must not survive next to the new one (SQLite's -wal). */
  sideFiles: string[];
  /**
   * The temp holds one byte range of dest (Chunk.offset), not the whole file: at the swap its bytes are
   * written into dest at the offset, after the old bytes of the range were saved beside it. The file or
   * device is never renamed, truncated or replaced: its other ranges may belong to other spaces.
   */
  range?: { offset: number; size: number };
}

export class RestoreJournal implements RestoreFiles {
  /** One random tag per restore: temp and aside names nobody can guess ahead. */
  readonly tag = randomBytes(6).toString('hex');
  private readonly made = new Set<string>();
  private dirQueue: Promise<unknown> = Promise.resolve();
  private asides = 0;

  constructor(
    private readonly cat: Catalog,
    readonly restoreId: number,
    readonly guard: DestinationGuard,
  ) {}

  /** Temp names for a batch of destinations, journaled in one transaction before any is created. */
  planTemps(dests: string[]): Map<string, string> {
    const temps = new Map(dests.map((d) => [d, `${d}.ebr-restore-${this.tag}-${randomBytes(4).toString('hex')}`]));
    journalSteps(this.cat, this.restoreId, [...temps].map(([dest, temp]) => ({ op: 'stage', path: dest, details: { temp } })));
    return temps;
  }

  /**
   * Missing directories down to dir are made one by one (each journaled first); none may be a link.
   * Calls run one after another: spaces stage in parallel, and two of them may need the same parent.
   */
  async ensureDir(dir: string): Promise<void> {
    if (this.made.has(dir)) return;
    const run = this.dirQueue.then(() => this.makeDirs(dir));
    this.dirQueue = run.catch(() => undefined);
    return run;
  }

  private async makeDirs(dir: string): Promise<void> {
    if (this.made.has(dir)) return;
    await this.guard.check(path.join(dir, '.'));
    const root = this.guard.rootOf(dir);
    let at = root;
    for (const part of ['', ...path.relative(root, dir).split(path.sep).filter(Boolean)]) {
      at = part ? path.join(at, part) : at;
      // The root itself was chosen by the user or recorded at discovery: it may be a link (a data directory elsewhere).
      const st = await (part ? lstat(at) : stat(at)).catch(() => undefined);
      if (st?.isDirectory()) continue;
      if (!st && !part) {
        journalSteps(this.cat, this.restoreId, [{ op: 'mkdir', path: at }]);
        await mkdir(at, { recursive: true, mode: 0o700 });
        continue;
      }
      if (st && at === dir) throw this.guard.refuse(dir, st.isSymbolicLink() ? 'is a symbolic link where a directory belongs' : 'is not a directory');
      if (st) throw this.guard.refuse(dir, st.isSymbolicLink() ? `would be reached through the symbolic link ${at}` : `would be reached through ${at}, which is not a directory`);
      journalSteps(this.cat, this.restoreId, [{ op: 'mkdir', path: at }]);
      await mkdir(at, { mode: 0o700 });
    }
    this.made.add(dir);
  }

  /** Writes a verified copy into its (journaled) temp name: created new, never through a link; attributes set on the open file. */
  async stageFile(temp: string, body: AsyncIterable<Buffer>, signal: AbortSignal, what: string, attrs: FileAttributes & { mtimeMs?: number }): Promise<Digested> {
    await this.ensureDir(path.dirname(temp));
    const fh = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      // One write in flight while the next buffer is read and hashed.
      let pending: Promise<unknown> = Promise.resolve();
      const got = await copyWithDigest(
        body,
        async (b) => {
          await pending;
          faultPoint('stage-chunk');
          pending = writeAll(fh, b);
        },
        undefined,
        signal,
        what,
      );
      await pending;
      // No fsync here: flushStaged makes every staged file durable at once before the swap renames any.
      await setOnHandle(fh, attrs);
      if (attrs.mtimeMs !== undefined) await fh.utimes(new Date(), new Date(attrs.mtimeMs));
      return got;
    } finally {
      await fh.close();
    }
  }

  async stageSymlink(temp: string, target: string, attrs: FileAttributes): Promise<void> {
    await this.ensureDir(path.dirname(temp));
    await symlink(target, temp);
    if (isRoot() && attrs.uid !== undefined && attrs.gid !== undefined) await lchown(temp, attrs.uid, attrs.gid);
  }

  /**
   * Makes staged files durable before any is renamed into place: one syncfs per filesystem they are on
   * (`sync -f`), which on btrfs and ext4 costs about one fsync instead of one per file (a data
   * directory holds thousands); where that is not available, every file is fsynced, a few at a time.
   */
  async flushStaged(files: StagedFile[]): Promise<void> {
    const dirs = [...new Set(files.map((f) => path.dirname(f.temp)))];
    const byDevice = new Map<number, string>();
    let known = true;
    for (const d of dirs) {
      const st = await stat(d).catch(() => undefined);
      if (!st) known = false;
      else if (!byDevice.has(st.dev)) byDevice.set(st.dev, d);
    }
    const synced = await Promise.all([...byDevice.values()].map((d) => syncFilesystem(d)));
    // A directory that could not be looked at, or a filesystem `sync -f` failed on: every file is fsynced instead.
    if (known && synced.every(Boolean)) return;
    // Ranges too: their temps are regular files, written into the file or device at the swap.
    const queue = files.map((f) => f.temp);
    const one = async () => {
      for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
        const st = await lstat(t);
        if (!st.isFile()) continue;
        const fh = await open(t, constants.O_RDONLY | O_NOFOLLOW);
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, one));
  }

  /**
   * Puts staged files in place: every step journaled first (one transaction), then for each file the
   * old one (and its side files) renamed aside and the new one renamed in. Renames within a directory
   * are atomic: at no moment is a half-written file under a live name.
   */
  async swap(files: StagedFile[]): Promise<void> {
    const steps: Array<{ op: string; path: string; details: Record<string, unknown> }> = [];
    for (const f of files) {
      await this.guard.check(f.dest);
      if (f.range) {
        const st = await lstat(f.dest).catch(() => undefined);
        if (st?.isSymbolicLink()) throw this.guard.refuse(f.dest, 'is a symbolic link where a file or device belongs');
        // saved: null when dest is new (undo removes it); oldSize: what undo cuts a file that grew back to.
        steps.push({ op: 'place-range', path: f.dest, details: { temp: f.temp, offset: f.range.offset, size: f.range.size, saved: st ? this.asideName(f.dest) : null, oldSize: st?.isFile() ? st.size : null } });
        continue;
      }
      steps.push({ op: 'place', path: f.dest, details: { temp: f.temp, aside: (await exists(f.dest)) ? this.asideName(f.dest) : null } });
      for (const s of f.sideFiles) {
        await this.guard.check(s);
        steps.push({ op: 'place-side', path: s, details: { aside: (await exists(s)) ? this.asideName(s) : null } });
      }
    }
    journalSteps(this.cat, this.restoreId, steps);
    for (const s of steps) {
      if (s.op === 'place-range') {
        await placeRange(s.path, s.details as unknown as RangeStep);
        continue;
      }
      const aside = s.details.aside as string | null;
      if (aside) await rename(s.path, aside);
      faultPoint('swap-aside');
      if (s.op === 'place') await rename(s.details.temp as string, s.path);
      faultPoint('swap');
    }
    for (const d of new Set(files.map((f) => path.dirname(f.dest)))) await syncDir(d).catch(() => undefined);
  }

  // --- RestoreFiles: the finish step's only way to change files ---

  async writeFile(file: string, data: string | Buffer, attrs: FileAttributes = {}): Promise<void> {
    await this.replaceWith(file, async (tmp) => {
      const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
        await setOnHandle(fh, { mode: 0o600, ...attrs });
      } finally {
        await fh.close();
      }
    });
  }

  async writeSparse(file: string, size: number, attrs: FileAttributes = {}): Promise<void> {
    await this.replaceWith(file, async (tmp) => {
      const fh = await open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        await fh.truncate(size);
        await setOnHandle(fh, { mode: 0o600, ...attrs });
      } finally {
        await fh.close();
      }
    });
  }

  async symlink(target: string, link: string, attrs: FileAttributes = {}): Promise<void> {
    await this.replaceWith(link, async (tmp) => {
      await symlink(target, tmp);
      if (isRoot() && attrs.uid !== undefined && attrs.gid !== undefined) await lchown(tmp, attrs.uid, attrs.gid);
    });
  }

  async mkdir(dir: string, attrs?: FileAttributes): Promise<void> {
    await this.ensureDir(dir);
    if (attrs) await this.setAttributes(dir, attrs);
  }

  async setAside(p: string, o: { keep?: boolean; as?: string } = {}): Promise<string> {
    faultPoint('files');
    await this.guard.check(p);
    const aside = o.as ?? this.asideName(p);
    await this.guard.check(aside);
    if (o.as) await this.ensureDir(path.dirname(aside));
    journalSteps(this.cat, this.restoreId, [{ op: 'aside', path: p, details: { aside, keep: o.keep ?? false } }]);
    await rename(p, aside);
    // What was checked or made at p is gone from there now.
    for (const d of this.made) if (d === p || isInside(d, p)) this.made.delete(d);
    this.guard.forget(p);
    return aside;
  }

  async setAttributes(p: string, attrs: FileAttributes): Promise<void> {
    await this.guard.check(p);
    const st = await lstat(p);
    if (st.isSymbolicLink()) {
      if (!isRoot() || attrs.uid === undefined || attrs.gid === undefined) return;
      journalSteps(this.cat, this.restoreId, [{ op: 'attrs', path: p, details: { before: { uid: st.uid, gid: st.gid }, link: true } }]);
      await lchown(p, attrs.uid, attrs.gid);
      return;
    }
    journalSteps(this.cat, this.restoreId, [{ op: 'attrs', path: p, details: { before: { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } } }]);
    await setNoFollow(p, attrs);
  }

  async track(dir: string): Promise<void> {
    await this.guard.check(path.join(dir, '.'));
    const names = await readdir(dir).catch(() => [] as string[]);
    journalSteps(this.cat, this.restoreId, [{ op: 'track', path: dir, details: { names } }]);
  }

  async check(p: string): Promise<void> {
    await this.guard.check(p);
  }

  async ownProcess(pid: number): Promise<void> {
    journalSteps(this.cat, this.restoreId, [{ op: 'process', path: String(pid), details: { pid, start: processStart(pid) } }]);
  }

  /** Undoes every step, newest first (see undoJournal). */
  async rollback(): Promise<string[]> {
    return undoJournal(journalOf(this.cat, this.restoreId));
  }

  /** After finish succeeded: what was set aside goes (unless kept); returns the kept paths. */
  async commit(): Promise<string[]> {
    return commitJournal(journalOf(this.cat, this.restoreId));
  }

  /** Unique per call: a path replaced twice in one restore (a data file, then finish's rewrite) keeps both old versions apart. */
  private asideName(p: string): string {
    return `${p}.ebr-old-${this.tag}-${(this.asides++).toString(36)}`;
  }

  /** Writes a new entry under a temp name, then swaps it in like the data files (old one aside). */
  private async replaceWith(file: string, make: (tmp: string) => Promise<void>): Promise<void> {
    faultPoint('files');
    await this.guard.check(file);
    await this.ensureDir(path.dirname(file));
    const [tmp] = this.planTemps([file]).values();
    await make(tmp!);
    await this.swap([{ temp: tmp!, dest: file, sideFiles: [] }]);
  }
}

/** syncfs(2) of the filesystem holding dir, through coreutils `sync -f`; false when that could not run. */
function syncFilesystem(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', dir], { timeout: 600_000 }, (err) => resolve(!err));
  });
}

async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  for (let off = 0; off < b.length; ) {
    const { bytesWritten } = await fh.write(b, off, b.length - off);
    off += bytesWritten;
  }
}
