/**
 * The Informix session: no connection at all — every step is one of the server's own tools. The window
 * is `onmode -c block` (a checkpoint, then update transactions held; readers go on) … `onmode -c
 * unblock`, then the logical log current at block time is backed up (`onbar -b -l -c`), without which
 * the ON-Bar guide calls the external backup not restorable. The block is server state that outlives
 * ebr: the workflow journals it and arms a watchdog that runs `ebr release` (endBlock).
 */
import { readFile, stat } from 'node:fs/promises';
import type { BlockToken, DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta, Chunk, Space } from '../../src/model.js';
import { argv, runTool, shellLine } from './informix-commands.js';
import { onconfigPath, type InformixSettings } from './informix-config.js';
import { parseDbspaces, parseLogs, parseStatus, type ServerStatus } from './informix-onstat.js';

export async function serverStatus(s: InformixSettings, context: Record<string, unknown>, signal?: AbortSignal): Promise<ServerStatus> {
  // onstat exits non-zero (255) when shared memory is not initialized: that is an answer, not a failure.
  const r = await runTool(s, argv.status(s), { code: 'connect', what: 'cannot read the server status', context, ...(signal ? { signal } : {}), check: false });
  return parseStatus(r.output);
}

export async function discoverSpaces(s: InformixSettings, context: Record<string, unknown>, signal: AbortSignal): Promise<Space[]> {
  const d = parseDbspaces((await runTool(s, argv.dbspaces(s), { code: 'discover', what: 'cannot list the dbspaces', context, signal })).output);
  const logs = parseLogs((await runTool(s, argv.logs(s), { code: 'discover', what: 'cannot list the logical logs', context, signal })).output);
  if (!d.dbspaces.length || !d.chunks.length) {
    throw new EbrError('discover', `onstat -d on ${s.server} listed no dbspaces or no chunks`, { hint: 'check INFORMIXSERVER (informix.server) and that the server is on-line', context: { ...context, command: argv.dbspaces(s).join(' ') } });
  }
  const dbsOfChunk = new Map(d.chunks.map((c) => [c.chunk, c.dbspace]));
  const logDbspaces = new Set([1, ...[logs.physicalChunk, ...logs.logicalChunks].filter((c): c is number => c !== undefined).map((c) => dbsOfChunk.get(c) ?? 1)]);
  const spaces: Space[] = [];
  for (const dbs of d.dbspaces) {
    throwIfAborted(signal, context);
    // Temporary dbspaces are never restored; the server recreates what they held.
    if (dbs.temporary) continue;
    const chunks: Chunk[] = [];
    for (const c of d.chunks.filter((x) => x.dbspace === dbs.number)) {
      let st;
      try {
        st = await stat(c.path);
      } catch (err) {
        throw new EbrError('discover', `cannot read chunk ${c.chunk} of ${dbs.name} at ${c.path}: ${(err as Error).message}`, {
          hint: 'run ebr on the database host as informix (or root), so it can read the chunk files and devices onstat -d names',
          context: { ...context, space: dbs.name, path: c.path },
          cause: err,
        });
      }
      chunks.push({
        space: dbs.name,
        name: `${dbs.name}/chunk${c.chunk}`,
        path: c.path,
        type: 'file',
        // A chunk is a byte range of its file or device: several chunks may share one.
        offset: c.offset * s.basePageSize,
        size: c.size * dbs.pageSize,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        details: { chunk: c.chunk, offsetPages: c.offset, sizePages: c.size, pageSize: dbs.pageSize, device: st.isBlockDevice() || st.isCharacterDevice() },
      });
    }
    const critical = logDbspaces.has(dbs.number);
    const why = dbs.number === 1 ? 'the root dbspace' : 'holds the physical or logical log';
    spaces.push({ name: dbs.name, critical, kind: 'dbspace', chunks, ...(critical ? { notes: [`${why}: restored only with the whole server (cold)`] } : {}), details: { number: dbs.number, pageSize: dbs.pageSize, flags: dbs.letters } });
  }
  return spaces;
}

export function informixSession(instance: InstanceContext<InformixSettings>, status: ServerStatus): DbmsSession {
  const s = instance.settings;
  const ctx = { instance: instance.name, host: s.server };
  const metaPaths = { onconfig: onconfigPath(s, instance.resolvePath), sqlhosts: instance.resolvePath(s.sqlhosts), ixbar: instance.resolvePath(s.ixbar) };

  return {
    async describe() {
      return { server: s.server, version: status.version, mode: status.mode };
    },

    async preflight() {
      if (!status.up || !/On-Line/i.test(status.mode)) {
        throw new EbrError('connect', `server ${s.server} is ${status.up ? status.mode : 'not running (shared memory not initialized)'}; an external backup needs it on-line`, { hint: 'start it (oninit) or bring it on-line (onmode -m)', context: { ...ctx, phase: 'preflight' } });
      }
      if (status.blocked) {
        throw new EbrError('block', `server ${s.server} is already blocked for an external backup (onstat - says Blocked:${status.blockReasons.join(' ')}): a block left by someone else, or by a dead ebr`, { hint: `run \`ebr release --instance ${instance.name}\` (onmode -c unblock) once nobody is copying chunks`, context: { ...ctx, phase: 'preflight' } });
      }
    },

    discover: (signal) => discoverSpaces(s, { ...ctx, phase: 'discover' }, signal),

    async checkpoint(signal) {
      // A checkpoint now leaves less for the one onmode -c block forces inside the window.
      await runTool(s, argv.checkpoint(s), { code: 'block', what: 'the checkpoint failed', context: { ...ctx, phase: 'checkpoint' }, signal });
    },

    async block(): Promise<BlockToken> {
      await runTool(s, argv.block(s), { code: 'block', what: 'cannot block the server', context: { ...ctx, phase: 'acquire' } });
      const blockedAt = Date.now();
      try {
        // One onstat -l inside the window: its header says Blocked:, its list the log current at block time.
        const out = (await runTool(s, argv.logs(s), { code: 'block', what: 'cannot read the current logical log', context: { ...ctx, phase: 'acquire' } })).output;
        const st = parseStatus(out);
        if (!st.blocked) {
          throw new EbrError('block', `onmode -c block returned, but onstat -l on ${s.server} does not say Blocked:ARCHIVE… (${st.blockReasons.join(' ') || 'not blocked'})`, {
            hint: 'see the message log (MSGPATH); another onmode -c unblock may have run',
            context: { ...ctx, phase: 'acquire' },
          });
        }
        return { blockedAt, details: { currentLog: parseLogs(out).current } };
      } catch (err) {
        // The gate unblocks only once block returned: unblock here rather than leave it to the watchdog.
        await runTool(s, argv.unblock(s), { code: 'block', what: 'cannot unblock', context: { ...ctx, phase: 'acquire' } }).catch(() => undefined);
        throw err;
      }
    },

    async unblock(token, outcome): Promise<BackupMeta> {
      await runTool(s, argv.unblock(s), { code: 'block', what: 'cannot unblock the server', context: { ...ctx, phase: 'release' } });
      const currentLog = token.details?.currentLog as number | undefined;
      if (outcome?.failed) return { details: { currentLog } };
      const files: Record<string, Buffer> = {};
      for (const [key, file] of Object.entries(metaPaths)) {
        try {
          files[key] = await readFile(file);
        } catch (err) {
          throw new EbrError('block', `cannot read ${key} at ${file}: ${(err as Error).message}`, { hint: `set informix.${key} to the server's file; restore needs it`, context: { ...ctx, phase: 'release', path: file }, cause: err });
        }
      }
      return {
        files,
        ...(currentLog !== undefined ? { logStart: String(currentLog), logEnd: String(currentLog) } : {}),
        details: { server: s.server, version: status.version, blockedAt: new Date(token.blockedAt).toISOString(), unblockedAt: new Date().toISOString(), currentLog, metaPaths },
      };
    },

    async afterRelease(meta, signal) {
      // Outside the window: without the log current at block time the external backup cannot be restored.
      const currentLog = meta.details?.currentLog as number | undefined;
      const command = argv.logBackup(s);
      await runTool(s, command, { code: 'logArchive', what: `cannot back up logical log ${currentLog ?? '(current)'}, which the backup needs`, context: { ...ctx, phase: 'after-release' }, signal });
      return { logBackup: { command: shellLine(command), at: new Date().toISOString() } };
    },

    releaseCommand() {
      if (!instance.ebrArgv) throw new EbrError('internal', 'the Informix adapter needs instance.ebrArgv for its release command', { context: ctx });
      return instance.ebrArgv(['release', '--instance', instance.name]);
    },

    async [Symbol.asyncDispose]() {},
  };
}
