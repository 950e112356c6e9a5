/**
 * The Informix tools, run through execa with the server's environment. Every argv ebr runs is built
 * here, so the dry-run plans list exactly what the real runs send.
 */
import path from 'node:path';
import { loadExeca } from '../../src/util/execa.js';
import type { PlanStep } from '../../src/adapter-api.js';
import { EbrError, type ErrorCode, type ErrorContext } from '../../src/errors.js';
import { toolPath, type InformixSettings, type InformixTool } from './informix-config.js';

const t = toolPath;

export const argv = {
  /** The header alone: mode, and `Blocked:<reason>` while blocked. */
  status: (s: InformixSettings) => [t(s, 'onstat'), '-'],
  dbspaces: (s: InformixSettings) => [t(s, 'onstat'), '-d'],
  /** The header and the physical and logical logs: the block and the current log in one run. */
  logs: (s: InformixSettings) => [t(s, 'onstat'), '-l'],
  checkpoint: (s: InformixSettings) => [t(s, 'onmode'), '-c'],
  block: (s: InformixSettings) => [t(s, 'onmode'), '-c', 'block'],
  unblock: (s: InformixSettings) => [t(s, 'onmode'), '-c', 'unblock'],
  logBackup: (s: InformixSettings) => s.logBackup ?? [t(s, 'onbar'), '-b', '-l', '-c'],
  logSync: (s: InformixSettings) => [t(s, 'onbar'), '-b', '-l'],
  salvage: (s: InformixSettings) => [t(s, 'onbar'), '-b', '-l', '-s'],
  restoreExternal: (s: InformixSettings, o: { until?: string; physical?: boolean; dbspaces?: string[] } = {}) => [
    t(s, 'onbar'),
    '-r',
    '-e',
    ...(o.until ? ['-t', o.until] : []),
    ...(o.physical ? ['-p'] : []),
    ...(o.dbspaces ?? []),
  ],
  restoreLogs: (s: InformixSettings) => [t(s, 'onbar'), '-r', '-l'],
};

export const commandStep = (phase: string, a: string[]): PlanStep => ({ phase, kind: 'command', text: shellLine(a) });

/** An argv as a shell would need it typed: what plans and notes show. */
export const shellLine = (a: string[]): string => a.map(shellWord).join(' ');

function shellWord(w: string): string {
  return /^[\w./:=@+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

export function environmentOf(s: InformixSettings): Record<string, string> {
  return {
    INFORMIXSERVER: s.server,
    ONCONFIG: s.onconfig,
    INFORMIXSQLHOSTS: s.sqlhosts,
    ...(s.informixDir ? { INFORMIXDIR: s.informixDir } : {}),
  };
}

export interface ToolResult {
  exitCode: number;
  output: string;
}

const tools: InformixTool[] = ['onstat', 'onmode', 'onbar'];

/** Which of the tools an argv runs (a configured logBackup command is its own). */
function toolOf(s: InformixSettings, file: string): InformixTool | undefined {
  return tools.find((x) => toolPath(s, x) === file) ?? tools.find((x) => path.basename(file) === x);
}

const failHints: Record<InformixTool, string> = {
  onstat: 'run ebr on the database host as informix (or root), with informix.server naming a server in sqlhosts',
  onmode: 'onmode -c needs user informix or root: run ebr as informix on the database host; see the message log (MSGPATH)',
  onbar: 'see the ON-Bar activity log (BAR_ACT_LOG) and the storage manager; ebr runs onbar as the user it runs as (root, informix or a member of bargroup)',
};

function missingHint(s: InformixSettings, tool: InformixTool | undefined, file: string): string {
  if (!tool) return `check informix.logBackup: ${file} must be an executable on this host`;
  const where = s[tool] ? `informix.${tool} is ${s[tool]}` : s.informixDir || process.env.INFORMIXDIR ? `it was looked for under INFORMIXDIR/bin` : 'neither informix.informixDir nor INFORMIXDIR is set, so it was looked for on PATH';
  return `${where}: set informix.informixDir to the server's INFORMIXDIR (the tools are <informixDir>/bin/${tool}), or informix.${tool} to the tool's path, and run ebr on the database host`;
}

/** Runs one tool; a tool that cannot start is an error here, a non-zero exit is the caller's to judge unless `check`. */
export async function runTool(
  s: InformixSettings,
  a: string[],
  o: { code: ErrorCode; what: string; context: ErrorContext; signal?: AbortSignal; check?: boolean },
): Promise<ToolResult> {
  const [file, ...args] = a as [string, ...string[]];
  const tool = toolOf(s, file);
  const command = shellLine(a);
  const name = tool ?? path.basename(file);
  const execa = await loadExeca();
  const r = await execa(file, args, {
    env: environmentOf(s),
    reject: false,
    all: true,
    timeout: s.commandTimeoutS * 1000,
    ...(o.signal ? { cancelSignal: o.signal } : {}),
    forceKillAfterDelay: 5000,
  });
  if (r.isCanceled) throw new EbrError('cancelled', `cancelled while ${command} ran`, { context: { ...o.context, command } });
  if (r.exitCode === undefined) {
    const code = (r as unknown as { code?: string }).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'not executable' : r.timedOut ? `did not finish within ${s.commandTimeoutS} s (informix.commandTimeoutS)` : (r.shortMessage ?? 'could not be run');
    throw new EbrError(o.code, `${o.what}: ${name} ${why} at ${file} (ran ${command})`, {
      hint: code === 'ENOENT' || code === 'EACCES' ? missingHint(s, tool, file) : (tool ? failHints[tool] : `check informix.logBackup (${file})`),
      context: { ...o.context, tool: name, path: file, command },
    });
  }
  const result = { exitCode: r.exitCode, output: String(r.all ?? '') };
  if (o.check !== false && result.exitCode !== 0) throw toolError(s, result, a, o);
  return result;
}

export function toolError(s: InformixSettings, r: ToolResult, a: string[], o: { code: ErrorCode; what: string; context: ErrorContext }): EbrError {
  const file = a[0]!;
  const tool = toolOf(s, file);
  const name = tool ?? path.basename(file);
  const said = r.output.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || 'no output';
  return new EbrError(o.code, `${o.what}: ${name} (${shellLine(a)}) exited with ${r.exitCode}: ${said}`, {
    hint: tool ? failHints[tool] : `check informix.logBackup (${file}) and what it printed`,
    context: { ...o.context, tool: name, path: file, command: shellLine(a) },
  });
}
