/**
 * How providers run storage commands (btrfs, lvcreate, zfs…). Injectable, so that tests can assert the
 * exact argv a provider issues where the storage itself cannot be made (no device-mapper, no ZFS here).
 */
import { loadExeca } from '../util/execa.js';
import { EbrError, type ErrorContext } from '../errors.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one command without a shell; never throws for a non-zero exit (the caller decides what failure means). */
export type CommandRunner = (file: string, args: readonly string[], options?: { signal?: AbortSignal }) => Promise<CommandResult>;

/** The real runner: execa, no shell, the child killed if ebr is cancelled or exits. */
export const execaRunner: CommandRunner = async (file, args, options = {}) => {
  const execa = await loadExeca();
  const r = await execa(file, [...args], {
    reject: false,
    stdin: 'ignore',
    cleanup: true,
    forceKillAfterDelay: 2000,
    ...(options.signal ? { cancelSignal: options.signal } : {}),
    // Parsed output must not change with the user's locale.
    env: { LC_ALL: 'C' },
  });
  if (r.exitCode === undefined) {
    const code = (r.cause as NodeJS.ErrnoException | undefined)?.code;
    // Spawning failed; ENOENT is the one worth a dedicated message, the caller names the package.
    return { exitCode: code === 'ENOENT' ? 127 : 126, stdout: '', stderr: code === 'ENOENT' ? `${file}: command not found` : String(r.message ?? '') };
  }
  return { exitCode: r.exitCode, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
};

/** What a provider needs to know to turn a failed command into a useful error. */
export interface CommandTool {
  /** The provider name, for messages. */
  provider: string;
  /** The Debian package that ships the command, for the hint when it is missing. */
  packageOf: Record<string, string>;
}

/** Runs a command and throws an EbrError (code `snapshot`) naming the command and its stderr when it fails. */
export async function runChecked(
  run: CommandRunner,
  tool: CommandTool,
  argv: readonly string[],
  options: { signal?: AbortSignal; context?: ErrorContext; hint?: string } = {},
): Promise<CommandResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('runChecked: empty argv');
  if (options.signal?.aborted) {
    throw new EbrError('cancelled', `cancelled before ${file} ran`, { context: { ...options.context } });
  }
  const r = await run(file, args, options.signal ? { signal: options.signal } : {});
  if (r.exitCode === 0) return r;
  if (options.signal?.aborted) {
    throw new EbrError('cancelled', `cancelled while ${file} ran`, { context: { ...options.context } });
  }
  if (r.exitCode === 127) throw missingCommand(tool, file, { ...options.context, command: argv.join(' ') });
  throw new EbrError('snapshot', `${argv.join(' ')} failed (exit ${r.exitCode}): ${lastLines(r.stderr || r.stdout)}`, {
    ...(options.hint ? { hint: options.hint } : {}),
    context: { ...options.context, command: argv.join(' ') },
  });
}

/** The error for a storage command that is not installed, naming the Debian package that ships it. */
export function missingCommand(tool: CommandTool, file: string, context: ErrorContext = {}): EbrError {
  const pkg = tool.packageOf[file];
  return new EbrError('snapshot', `the ${tool.provider} provider needs the command ${file}, which is not installed`, {
    hint: pkg ? `install it: apt-get install -y ${pkg}` : `install ${file} and make sure it is on PATH`,
    context,
  });
}

export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' / ') || '(no output)';
}
