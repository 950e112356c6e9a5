/**
 * The log archive on disk: one file per log (a WAL segment, a binlog), each with a `<name>.sha256`
 * sidecar in `sha256sum` format. The sidecar is written last and is the commit mark: a log without one
 * is not in the store (a crash left it half-done and the next put replaces it). The store lives beside
 * the backups, under `<target.path>/<instance>/<kind>/`, so a DBA can read it with plain `cp` and
 * check it with `sha256sum -c`.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../errors.js';
import { syncDir } from '../archive/backup-dir.js';
import { copyFileWithDigest, digestFile } from '../archive/digest-copy.js';
import { giveTo, storeOwner } from '../archive/owned-log-store.js';

export interface LogStore {
  /** atomic, sha256 recorded; 'identical' if the same bytes are already there; throws EbrError('logArchive') if different bytes exist under that name */
  put(name: string, sourceFile: string, signal?: AbortSignal): Promise<'stored' | 'identical'>;
  /** false when absent; digest verified before the atomic rename into dest */
  get(name: string, destFile: string, signal?: AbortSignal): Promise<boolean>;
  has(name: string): Promise<boolean>;
  list(prefix?: string): Promise<Array<{ name: string; size: number; sha256: string }>>;
  /**
   * Removes one log (purge). The commit mark goes first, so a crash half-way leaves a file that is not
   * in the store rather than a digest without its log. Absent is no error. Stores that cannot remove
   * single logs leave it out, and purge refuses for them.
   */
  remove?(name: string): Promise<void>;
}

/** A log kind is the adapter's own name for its logs (capabilities.logArchive): 'wal', 'binlog', 'redo' … */
export type LogKind = string;

const sidecarSuffix = '.sha256';

/**
 * The store in one directory; created on the first put. Local targets keep it beside the backups,
 * under `<target.path>/<instance>/<kind>/`, so a DBA can read it with plain `cp` and `sha256sum -c`.
 */
export function logStoreAt(root: string, instance?: string): LogStore {
  const ctx = (name: string, extra: Record<string, unknown> = {}) => ({ ...(instance ? { instance } : {}), path: path.join(root, name), ...extra });
  const fileOf = (name: string) => path.join(root, checkName(name));
  const sidecarOf = (name: string) => `${fileOf(name)}${sidecarSuffix}`;

  async function recorded(name: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(sidecarOf(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const digest = /^([0-9a-f]{64}) /.exec(text)?.[1];
    if (!digest) {
      throw new EbrError('logArchive', `the digest file ${sidecarOf(name)} is damaged`, {
        hint: 'compare the log with its origin by hand; remove both files only if the log is known to be good elsewhere',
        context: ctx(name),
      });
    }
    return digest;
  }

  function refuse(name: string, have: string, got: string, source: string): EbrError {
    return new EbrError('logArchive', `the archive already holds a different ${name} (sha256 ${have.slice(0, 12)}…, the new one is ${got.slice(0, 12)}…); refusing to overwrite it`, {
      hint: 'two servers (or a restored copy still archiving) are writing to the same log archive; give each its own instance name or target.path, and keep the existing file',
      context: ctx(name, { source }),
    });
  }

  return {
    async put(name, sourceFile, signal) {
      const final = fileOf(name);
      const before = await recorded(name);
      const size = (await stat(sourceFile)).size;
      if (before) {
        // The common retry: PostgreSQL re-runs archive_command after a crash between archive and its .done mark.
        const { sha256 } = await digestFile(sourceFile, signal);
        if (sha256 === before) return 'identical';
        throw refuse(name, before, sha256, sourceFile);
      }
      await mkdir(root, { recursive: true, mode: 0o750 });
      const owner = await storeOwner(root);
      const tmp = path.join(root, `.${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
      const sideTmp = `${tmp}${sidecarSuffix}`;
      try {
        const written = await copyFileWithDigest(sourceFile, tmp, signal);
        await giveTo(owner, tmp);
        if (written.size !== size) throw new Error(`${sourceFile} changed size while it was archived (${size} → ${written.size} bytes)`);
        // link(), unlike rename(), never replaces: two puts of one name cannot overwrite each other's bytes.
        if (!(await linkNew(tmp, final))) {
          const there = await digestFile(final, signal);
          if (there.sha256 !== written.sha256) {
            const now = await recorded(name);
            if (now) {
              if (now === written.sha256) return 'identical';
              throw refuse(name, now, written.sha256, sourceFile);
            }
            // A file without its digest is what a crash between the two links leaves: not in the store, replace it.
            await rename(tmp, final);
          }
        }
        await writeSynced(sideTmp, `${written.sha256}  ${name}\n`);
        await giveTo(owner, sideTmp);
        if (!(await linkNew(sideTmp, sidecarOf(name)))) {
          const now = await recorded(name);
          if (now !== written.sha256) throw refuse(name, now ?? '?', written.sha256, sourceFile);
          return 'identical';
        }
        await syncDir(root);
        return 'stored';
      } catch (err) {
        if (err instanceof EbrError) throw err;
        throw new EbrError('logArchive', `cannot archive ${name} from ${sourceFile}: ${(err as Error).message}`, {
          hint: 'check that the log archive directory is writable by the user running ebr (for PostgreSQL: the postgres OS user) and has free space',
          context: ctx(name, { source: sourceFile }),
          cause: err,
        });
      } finally {
        await rm(tmp, { force: true });
        await rm(sideTmp, { force: true });
      }
    },

    async get(name, destFile, signal) {
      const want = await recorded(name);
      if (!want) return false;
      const tmp = `${destFile}.ebr-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        const got = await copyFileWithDigest(fileOf(name), tmp, signal);
        if (got.sha256 !== want) {
          throw new EbrError('digestMismatch', `${name} in the log archive does not match its recorded digest (sha256 ${got.sha256.slice(0, 12)}…, recorded ${want.slice(0, 12)}…)`, {
            hint: 'the archived log is damaged; recovery cannot go past it. Restore to a time before it, or from a copy of the archive',
            context: ctx(name),
          });
        }
        await rename(tmp, destFile);
        return true;
      } catch (err) {
        await rm(tmp, { force: true });
        if (err instanceof EbrError) throw err;
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === fileOf(name)) {
          throw new EbrError('logArchive', `${name} has a digest in the log archive but its file is gone`, {
            hint: 'someone removed files from the log archive by hand; recovery cannot go past this log',
            context: ctx(name),
            cause: err,
          });
        }
        throw new EbrError('logArchive', `cannot fetch ${name} into ${destFile}: ${(err as Error).message}`, {
          hint: 'check that the destination directory is writable by the user running ebr',
          context: ctx(name, { dest: destFile }),
          cause: err,
        });
      }
    },

    async has(name) {
      return (await recorded(name)) !== undefined;
    },

    async list(prefix = '') {
      let names: string[];
      try {
        names = await readdir(root);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const out: Array<{ name: string; size: number; sha256: string }> = [];
      for (const entry of names.sort()) {
        if (entry.startsWith('.') || !entry.endsWith(sidecarSuffix)) continue;
        const name = entry.slice(0, -sidecarSuffix.length);
        if (!name.startsWith(prefix)) continue;
        const sha256 = await recorded(name);
        if (!sha256) continue;
        let size: number;
        try {
          size = (await stat(fileOf(name))).size;
        } catch {
          continue; // removed between readdir and stat (a purge)
        }
        out.push({ name, size, sha256 });
      }
      return out;
    },

    async remove(name) {
      try {
        await rm(sidecarOf(name), { force: true });
        await rm(fileOf(name), { force: true });
        await syncDir(root);
      } catch (err) {
        throw new EbrError('logArchive', `cannot remove ${name} from the log archive: ${(err as Error).message}`, {
          hint: 'check that the log archive directory is writable by the user running ebr',
          context: ctx(name),
          cause: err,
        });
      }
    },
  };
}

/** Log names become file names in the store: no separators, no dot files, no clash with the sidecars. */
function checkName(name: string): string {
  if (!/^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/.test(name) || name.endsWith(sidecarSuffix) || name.includes('.tmp-')) {
    throw new EbrError('logArchive', `"${name}" cannot be a log name in the archive`, {
      hint: 'log names may hold letters, digits and _ . @ + -, may not start with a dot and may not end in .sha256',
      context: { member: name },
    });
  }
  return name;
}

async function linkNew(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function writeSynced(file: string, text: string): Promise<void> {
  const fh = await open(file, 'wx', 0o640);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
