/**
 * Point-in-time roll-forward: archived binlogs are fetched from the log archive, read from the
 * backup's position by mariadb-binlog up to the target time, and piped into the temporary server.
 * Binlog event times have one-second resolution, so the target is applied to the second: events
 * stamped before the second of the target time are replayed, later ones are not.
 */
import path from 'node:path';
import { loadExeca } from '../../src/util/execa.js';
import { EbrError } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { ReplayPlan } from './binlog-chain.js';
import type { Tools } from './mariadb-tools.js';

export interface ReplayOptions {
  tools: Tools;
  store: LogStore;
  plan: ReplayPlan;
  until?: Date;
  /** Socket of the temporary server. */
  socket: string;
  /** Where the archived binlogs are fetched to. */
  scratch: string;
  instance: string;
  signal: AbortSignal;
}

export interface ReplayResult {
  files: string[];
  stopDatetime?: string;
  ms: number;
}

export async function replayBinlogs(o: ReplayOptions): Promise<ReplayResult> {
  const t0 = performance.now();
  const ctx = { instance: o.instance, phase: 'restore' };
  const local: string[] = [];
  for (const f of o.plan.files) {
    const dest = path.join(o.scratch, f.name);
    if (!(await o.store.get(f.name, dest, o.signal))) {
      throw new EbrError('logArchive', `${f.name} vanished from the log archive during the restore`, { hint: 'something is purging the log archive; stop it and restore again', context: { ...ctx, member: f.name } });
    }
    local.push(dest);
  }
  const stopDatetime = o.until ? utcSeconds(o.until) : undefined;
  const readerArgs = [`--start-position=${o.plan.startPosition}`, ...(stopDatetime ? [`--stop-datetime=${stopDatetime}`] : []), ...local];
  // The temporary server skips grant tables; loading them first lets replayed GRANT/CREATE USER statements run.
  // Not binlogged: it would take a GTID of the temporary server's own server_id into the restored GTID state.
  const clientArgs = [`--socket=${o.socket}`, '--user=root', '--binary-mode', '--init-command=FLUSH NO_WRITE_TO_BINLOG PRIVILEGES'];
  // mariadb-binlog reads --stop-datetime in its own time zone: make that UTC, like the string.
  // The reader's stdout only flows into the client: buffering it too would end the reader at maxBuffer
  // (a replay of more than 1 MiB of SQL) and leave the client waiting for input that never ends.
  const execa = await loadExeca();
  const reader = execa(o.tools.binlog, readerArgs, { env: { TZ: 'UTC' }, reject: false, stdin: 'ignore', stderr: 'pipe', cancelSignal: o.signal, buffer: { stdout: false, stderr: true }, maxBuffer: 1 << 20 });
  const client = execa(o.tools.client, clientArgs, { reject: false, stdout: 'ignore', stderr: 'pipe', cancelSignal: o.signal, maxBuffer: 1 << 20 });
  reader.stdout!.pipe(client.stdin!);
  const [r, c] = await Promise.all([reader, client]);
  if (o.signal.aborted) throw new EbrError('cancelled', 'cancelled during the binlog replay', { context: ctx });
  if (r.exitCode !== 0) {
    throw new EbrError('restore', `${path.basename(o.tools.binlog)} failed (exit ${r.exitCode}): ${String(r.stderr).trim().slice(-2000)}`, {
      hint: 'the archived binlogs could not be read; check them with `sha256sum -c` in the log archive and that mariadb-binlog matches the server version',
      context: ctx,
    });
  }
  if (c.exitCode !== 0) {
    throw new EbrError('restore', `replaying the binlogs failed (exit ${c.exitCode}): ${String(c.stderr).trim().slice(-2000)}`, {
      hint: 'a replayed statement failed on the restored server; the error names it. The restored files are crash-recovered up to the backup but not rolled forward',
      context: ctx,
    });
  }
  return { files: o.plan.files.map((f) => f.name), ...(stopDatetime ? { stopDatetime } : {}), ms: performance.now() - t0 };
}

/** `YYYY-MM-DD HH:MM:SS` in UTC, truncated to the second. */
export function utcSeconds(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}
