/**
 * The spool between a server's archive_command and `ebr log agent` (docs/log-agent.md). Nothing here
 * imports more than node's own modules: the push entry (agent-push.ts) that archive_command runs loads
 * only this file, so handing a log over costs a node start, a copy and two fsyncs.
 *
 *   <spool>/queue/<name>          a log handed over, fsync'd, its directory fsync'd: durable, not yet stored
 *   <spool>/done/<name>           "<sha256>\n": stored by the agent and read back with that digest
 *   <spool>/errors/<name>.error   why the agent cannot store a log; every push fails while one exists
 *   <spool>/conflicts/<name>      the spooled bytes of a log the archive holds differently (kept, never lost)
 *   <spool>/agent.pid             the running agent's pid (a lock; a dead pid is stale)
 *   <spool>/agent.log             what an agent that archive_command started writes
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface SpoolPaths {
  root: string;
  queue: string;
  done: string;
  errors: string;
  conflicts: string;
  pidFile: string;
  logFile: string;
}

export function spoolPaths(root: string): SpoolPaths {
  return {
    root,
    queue: path.join(root, 'queue'),
    done: path.join(root, 'done'),
    errors: path.join(root, 'errors'),
    conflicts: path.join(root, 'conflicts'),
    pidFile: path.join(root, 'agent.pid'),
    logFile: path.join(root, 'agent.log'),
  };
}

/** A refusal the push entry prints as `ebr: error:` and `ebr: hint:` and exits 1 for. */
export class SpoolError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The log store's rule for names (src/logs/log-store.ts): they become file names in the spool too. */
export function isSpoolableName(name: string): boolean {
  return /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/.test(name) && !name.endsWith('.sha256') && !name.includes('.tmp-') && !name.endsWith('.error');
}

export function makeSpool(p: SpoolPaths): void {
  for (const d of [p.root, p.queue, p.done, p.errors, p.conflicts]) mkdirSync(d, { recursive: true, mode: 0o750 });
}

export function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function sha256FileSync(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The digest the agent recorded for a stored log, or undefined. */
export function doneDigest(p: SpoolPaths, name: string): string | undefined {
  try {
    const d = readFileSync(path.join(p.done, name), 'utf8').trim();
    return /^[0-9a-f]{64}$/.test(d) ? d : undefined;
  } catch {
    return undefined;
  }
}

/** What the agent could not store: name and message of every errors/*.error. */
export function spoolErrors(p: SpoolPaths): Array<{ name: string; message: string }> {
  let entries: string[];
  try {
    entries = readdirSync(p.errors);
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.endsWith('.error'))
    .sort()
    .map((e) => ({ name: e.slice(0, -'.error'.length), message: readFileSync(path.join(p.errors, e), 'utf8').trim() }));
}

/** The logs waiting in the queue, in name order (the server's order for WAL and binlogs). */
export function queuedNames(p: SpoolPaths): string[] {
  let entries: string[];
  try {
    entries = readdirSync(p.queue);
  } catch {
    return [];
  }
  return entries.filter((e) => !e.startsWith('.') && isSpoolableName(e)).sort();
}

/** The agent's pid when one runs for this spool. */
export function runningAgent(p: SpoolPaths): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(p.pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Hands one log to the agent: when this returns, the bytes are in queue/<name>, fsync'd, and the
 * queue directory fsync'd, so a crash of anything after it loses nothing. 'identical' when the agent
 * already stored (done/) or queued these very bytes; a SpoolError when it holds different bytes under
 * the name or cannot store something (errors/): the server keeps the log and retries.
 */
export function spoolLog(p: SpoolPaths, file: string): 'spooled' | 'identical' {
  const source = path.resolve(file);
  const name = path.basename(source);
  if (!isSpoolableName(name)) {
    throw new SpoolError(`"${name}" cannot be a log name in the archive`, 'log names may hold letters, digits and _ . @ + -, may not start with a dot and may not end in .sha256; check archive_command passes the log file (%p)');
  }
  const errors = spoolErrors(p);
  if (errors.length) {
    const e = errors[0]!;
    throw new SpoolError(
      `the log agent could not store ${e.name}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}: ${e.message}`,
      `nothing is lost (the bytes are in ${p.conflicts} or the queue); resolve the cause, then remove ${path.join(p.errors, `${e.name}.error`)} so archiving continues`,
    );
  }
  let size: number;
  try {
    const st = statSync(source);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (err) {
    throw new SpoolError(`cannot archive ${source}: ${(err as Error).message}`, 'archive_command must pass %p, the path of the log file the server finished');
  }
  const recorded = doneDigest(p, name);
  const queued = path.join(p.queue, name);
  if (recorded || existsSync(queued)) {
    const got = sha256FileSync(source);
    const have = recorded ?? sha256FileSync(queued);
    if (got === have) return 'identical';
    throw new SpoolError(
      `the archive already holds a different ${name} (sha256 ${have.slice(0, 12)}…, the new one is ${got.slice(0, 12)}…); refusing to overwrite it`,
      'two servers (or a restored copy still archiving) are writing to the same log archive; give each its own instance name or target.path, and keep the existing file',
    );
  }
  try {
    makeSpool(p);
    const tmp = path.join(p.queue, `.${name}.tmp-${process.pid}`);
    copyFileSync(source, tmp);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (statSync(tmp).size !== size) {
      rmSync(tmp, { force: true });
      throw new Error(`${source} changed size while it was spooled`);
    }
    renameSync(tmp, queued);
    fsyncPath(p.queue);
  } catch (err) {
    throw new SpoolError(`cannot spool ${name} into ${p.queue}: ${(err as Error).message}`, 'the spool directory (logAgent.spool) must be writable by the server\'s OS user (for PostgreSQL: postgres) and have free space');
  }
  return 'spooled';
}

/** Writes a small file durably: temp, fsync, rename, fsync of the directory. */
export function writeDurably(file: string, text: string): void {
  const tmp = `${path.dirname(file)}/.${path.basename(file)}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o640);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncPath(path.dirname(file));
}
