/**
 * The Db2 command line processor, run through execa with DB2INSTANCE set: one-shot runs (`db2 <command>`,
 * `db2inidb …`) and the one long-lived CLP session that holds the connection of a backup window.
 *
 * Why one interactive `db2` process for the window: SET WRITE RESUME is to be issued from the connection
 * that issued SET WRITE SUSPEND ("It is suggested that I/O writes be resumed from the same connection from
 * which they were suspended", SET WRITE command, Db2 9.7–12.1), and the CLP keeps a connection in its
 * back-end process only for as long as its front end lives. ebr therefore starts `db2` once, without a
 * command (interactive mode, commands read from stdin), sends one command per line and, after each, the
 * CLP's own `ECHO ebr-mark N` command, whose line in the output marks where that command's answer ends.
 * When ebr dies, stdin closes, the front end ends and its connection goes with it; the suspend does not
 * (it is database state), which is what the watchdog and `RESTART DATABASE … WRITE RESUME` are for.
 */
import type { ResultPromise } from 'execa';
import { loadExeca } from '../../src/util/execa.js';
import type { PlanStep } from '../../src/adapter-api.js';
import { EbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import type { Db2Settings } from './db2-config.js';

export const markWord = 'ebr-mark';

export function environmentOf(s: Pick<Db2Settings, 'instance'>): Record<string, string> {
  return { DB2INSTANCE: s.instance };
}

export const commandStep = (phase: string, a: string[]): PlanStep => ({ phase, kind: 'command', text: a.map(shellWord).join(' ') });
/** A command sent on the CLP session (what the stand-in records, word for word). */
export const clpStep = (phase: string, text: string): PlanStep => ({ phase, kind: 'sql', text });

function shellWord(w: string): string {
  return /^[\w./:=@+,-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export function toolName(file: string): string {
  return file.split('/').pop()!.replace(/\.m?js$/, '').replace(/-double$/, '');
}

/** The first error message of CLP output: SQLnnnnN/C (SQL and utility errors) or DB2nnnnE (the CLP's own). */
export function clpError(output: string): { code: string; text: string } | undefined {
  const lines = output.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(?:db2 => )?((SQL\d{4,5}[NC]|DB2\d{4,5}E)\b.*)$/.exec(lines[i]!);
    if (!m) continue;
    const text = [m[1]!.trim()];
    for (let j = i + 1; j < lines.length && lines[j]!.trim() !== '' && text.length < 4; j++) text.push(lines[j]!.trim());
    return { code: m[2]!, text: text.join(' ') };
  }
  return undefined;
}

const hints: Record<string, string> = {
  SQL1013N: 'the database alias is not in the instance\'s database directory: check db2.database and db2.instance (`db2 list db directory` as the instance owner)',
  SQL1031N: 'the database directory cannot be found: check db2.instance (DB2INSTANCE) and that ebr runs on the database host',
  SQL1032N: 'the instance is not started: db2start (as the instance owner)',
  SQL1092N: 'the user ebr runs as lacks the authority: run ebr as the instance owner, or as a member of the SYSADM, SYSCTRL or SYSMAINT group',
  SQL1224N: 'the instance cannot be reached: check db2.instance and that it is started (db2start)',
  SQL1035N: 'the database is in use: `db2 force applications all` and `db2 deactivate database <db>` (or db2stop force; db2start) before a restore',
  SQL1552N: 'the database is already write suspended (a backup that died?): run `ebr release` for this instance, then back up again',
  SQL1550N: 'SET WRITE SUSPEND was refused (see the reason code): an online backup or restore may be running; retry when it ended',
  SQL4970N: 'roll-forward cannot reach the stop point: the archived logs it needs are missing (LOGARCHMETH1 destination); copy them back, or pick an earlier --until',
  SQL1117N: 'the database is in roll-forward pending state: ROLLFORWARD DATABASE <db> TO END OF LOGS AND STOP',
  SQL1116N: 'the database is in backup pending state: take an offline backup first (needed once after LOGARCHMETH1 was set)',
};

export function hintFor(code: string | undefined, tool: string): string {
  if (code && hints[code]) return hints[code]!;
  if (tool === 'db2inidb') return 'db2inidb runs on the database host as the instance owner, without a connection to the database; see the message and db2diag.log';
  return 'see the Db2 message (`db2 ? <code>` explains it) and db2diag.log; ebr runs the CLP as the user it runs as, with DB2INSTANCE set';
}

function notFound(file: string, s: Pick<Db2Settings, 'instance'>, o: { code: ErrorCode; what: string; context: ErrorContext }, detail: string): EbrError {
  const tool = toolName(file);
  const key = tool === 'db2inidb' ? 'db2.db2inidb' : 'db2.db2';
  const where = file.includes('/') ? file : `${file} (looked up on PATH: ${process.env.PATH ?? ''})`;
  return new EbrError(o.code, `${o.what}: cannot run ${tool}: ${where}: ${detail}`, {
    hint: `install the Db2 tools on this host, or set ${key} to the binary (~${s.instance}/sqllib/bin/${tool}), and run ebr as the instance owner`,
    context: { ...o.context, command: file, tool },
  });
}

export interface ToolResult {
  exitCode: number;
  output: string;
}

/**
 * One run of `db2 <command>` or `db2inidb …`. The CLP exits 0 (done), 1 (a SELECT found no rows),
 * 2 (a warning), 4 (a Db2 or SQL error) or 8 (a CLP system error): 4 and above fail here unless `check` is false.
 */
export async function runTool(
  s: Db2Settings,
  argv: string[],
  o: { code: ErrorCode; what: string; context: ErrorContext; signal?: AbortSignal; check?: boolean },
): Promise<ToolResult> {
  const [file, ...args] = argv;
  const command = argv.map(shellWord).join(' ');
  let r;
  try {
    const execa = await loadExeca();
    r = await execa(file!, args, {
      env: environmentOf(s),
      reject: false,
      all: true,
      timeout: s.commandTimeoutS * 1000,
      ...(o.signal ? { cancelSignal: o.signal } : {}),
      forceKillAfterDelay: 5000,
    });
  } catch (err) {
    throw notFound(file!, s, o, (err as Error).message);
  }
  if (r.isCanceled) throw new EbrError('cancelled', `cancelled while ${command} ran`, { context: { ...o.context, command } });
  if (r.timedOut) throw new EbrError(o.code, `${o.what}: ${command} did not finish within ${s.commandTimeoutS} s`, { hint: 'raise db2.commandTimeoutS, or look at what the tool waits for (db2diag.log)', context: { ...o.context, command } });
  if (r.exitCode === undefined) throw notFound(file!, s, o, (r as { code?: string }).code ?? r.shortMessage ?? 'not found');
  const result = { exitCode: r.exitCode, output: String(r.all ?? '') };
  if (o.check !== false && result.exitCode >= 4) throw toolError(result, command, o);
  return result;
}

export function toolError(r: ToolResult, command: string, o: { code: ErrorCode; what: string; context: ErrorContext }): EbrError {
  const tool = toolName(command.split(' ')[0]!);
  const e = clpError(r.output);
  const said = e?.text ?? (r.output.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || 'no output');
  return new EbrError(o.code, `${o.what}: ${command} exited with ${r.exitCode}: ${said}`, {
    hint: hintFor(e?.code, tool),
    context: { ...o.context, command, ...(e ? { db2Message: e.code } : {}) },
  });
}

/** A table as the CLP prints a SELECT: a header line, a line of dashes whose runs are the columns, the rows, `N record(s) selected.` */
export function parseTable(output: string): Array<Record<string, string>> {
  const lines = output.split('\n').map((l) => l.replace(/^db2 => /, '').replace(/\r$/, ''));
  const at = lines.findIndex((l) => /^-+( +-+)*\s*$/.test(l));
  if (at < 1) return [];
  const header = lines[at - 1]!;
  const cols = [...lines[at]!.matchAll(/-+/g)].map((m) => ({ start: m.index!, end: m.index! + m[0].length }));
  const names = cols.map((c, i) => header.slice(c.start, i + 1 < cols.length ? cols[i + 1]!.start : undefined).trim());
  const rows: Array<Record<string, string>> = [];
  for (const line of lines.slice(at + 1)) {
    if (line.trim() === '' || /record\(s\) selected/.test(line)) break;
    const row: Record<string, string> = {};
    cols.forEach((c, i) => (row[names[i]!] = line.slice(c.start, i + 1 < cols.length ? cols[i + 1]!.start : undefined).trim()));
    rows.push(row);
  }
  return rows;
}

/** `name (PARAM) = value` lines of GET DATABASE CONFIGURATION, by parameter. */
export function parseConfig(output: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of output.matchAll(/\((\w+)\)\s*=\s*(.*)$/gm)) out.set(m[1]!.toUpperCase(), m[2]!.trim());
  return out;
}

/** The long-lived CLP of a backup: commands one at a time, each answer read up to its mark. */
export interface ClpSession {
  /** Sends one command; resolves with its output, or throws the CLP's error (SQLnnnnN) naming the command. */
  run(command: string, o: { code: ErrorCode; what: string; phase: string; signal?: AbortSignal; allow?: string[] }): Promise<string>;
  /** The error that ended the CLP, if it ended. */
  ended(): Error | undefined;
  close(): Promise<void>;
}

export async function openClp(s: Db2Settings, context: ErrorContext): Promise<ClpSession> {
  let child: ResultPromise<{ env: Record<string, string>; reject: false; buffer: false; stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe' }>;
  const o = { code: 'connect' as ErrorCode, what: 'cannot start the Db2 command line processor', context };
  try {
    const execa = await loadExeca();
    child = execa(s.db2, [], { env: environmentOf(s), reject: false, buffer: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe' });
  } catch (err) {
    throw notFound(s.db2, s, o, (err as Error).message);
  }
  let out = '';
  let endedWith: Error | undefined;
  let waiting: (() => void) | undefined;
  const wake = () => waiting?.();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    wake();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
    wake();
  });
  child.stdin!.on('error', () => undefined);
  const exited = child.then((r) => {
    const code = (r as { code?: string }).code;
    endedWith =
      r.exitCode === undefined && !r.isTerminated
        ? notFound(s.db2, s, o, code ?? r.shortMessage ?? 'not found')
        : new EbrError('block', `the Db2 command line processor ${s.db2} ended (exit ${r.exitCode ?? r.signal})`, { context: { ...context, command: s.db2 } });
    wake();
  });
  let n = 0;
  let busy: Promise<unknown> = Promise.resolve();

  const runOne = async (command: string, ro: { code: ErrorCode; what: string; phase: string; signal?: AbortSignal; allow?: string[] }): Promise<string> => {
    const ctx = { ...context, phase: ro.phase, statement: command };
    if (endedWith) throw endedWith instanceof EbrError && endedWith.code !== 'block' ? endedWith : new EbrError(ro.code, `${ro.what}: the CLP session has ended`, { context: ctx, cause: endedWith });
    const mark = `${markWord} ${++n}`;
    const start = out.length;
    child.stdin!.write(`${command}\nECHO ${mark}\n`);
    const re = new RegExp(`(^|\\n)(db2 => )?${mark}\\s*\\n`);
    for (;;) {
      const found = re.exec(out.slice(start));
      if (found) {
        const answer = out.slice(start, start + found.index);
        out = out.slice(start + found.index + found[0].length);
        const e = clpError(answer);
        if (e && !ro.allow?.includes(e.code)) {
          throw new EbrError(ro.code, `${ro.what}: ${command}: ${e.text}`, { hint: hintFor(e.code, 'db2'), context: { ...ctx, db2Message: e.code } });
        }
        return answer;
      }
      if (endedWith) {
        const ended = endedWith as Error;
        if (ended instanceof EbrError && ended.code !== 'block') throw ended;
        throw new EbrError(ro.code, `${ro.what}: ${command}: the CLP ended before answering: ${out.slice(start).trim().split('\n').slice(-3).join(' / ') || 'no output'}`, { hint: hintFor(clpError(out.slice(start))?.code, 'db2'), context: ctx, cause: ended });
      }
      if (ro.signal?.aborted) throw new EbrError('cancelled', `cancelled during ${command}`, { context: ctx });
      let onAbort: (() => void) | undefined;
      await new Promise<void>((resolve) => {
        waiting = resolve;
        onAbort = () => resolve();
        ro.signal?.addEventListener('abort', onAbort, { once: true });
      });
      ro.signal?.removeEventListener('abort', onAbort!);
      waiting = undefined;
    }
  };

  return {
    run(command, ro) {
      const p = busy.then(() => runOne(command, ro));
      busy = p.catch(() => undefined);
      return p;
    },
    ended: () => endedWith,
    async close() {
      if (!endedWith) {
        // CONNECT RESET ends the connection; TERMINATE ends the CLP's back-end process and leaves interactive mode.
        child.stdin!.end('CONNECT RESET\nTERMINATE\n');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited.catch(() => undefined);
      clearTimeout(timer);
    },
  };
}
