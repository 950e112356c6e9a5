#!/usr/bin/env node
/**
 * The archive_command of `ebr log agent` (docs/log-agent.md), as `ebr log agent --print-command` prints it:
 *
 *   node …/dist/src/logs/agent-push.js --config ebr.yaml --spool DIR wal push --instance pg %p
 *
 * It spools the log durably (src/logs/agent-spool.ts) and makes sure an agent runs for the spool,
 * starting one when none does; the agent stores the log. It loads node's own modules and the spool
 * module only: no config parsing, no adapters, no stores, so it costs little more than a node start.
 * The words before `--instance` mirror `ebr wal push`, which a PostgreSQL preflight looks for.
 * Exit 0: spooled (or already stored with these bytes); 1: not spooled, the server keeps the log; 2: usage.
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runningAgent, SpoolError, spoolLog, spoolPaths, type SpoolPaths } from './agent-spool.js';

interface PushArgs {
  config?: string;
  spool?: string;
  instance?: string;
  file?: string;
}

function parse(argv: string[]): PushArgs {
  const out: PushArgs = {};
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (key: 'config' | 'spool' | 'instance') => {
      if (a.startsWith(`--${key}=`)) out[key] = a.slice(key.length + 3);
      else out[key] = argv[++i];
    };
    if (a === '--config' || a === '-c' || a.startsWith('--config=')) value('config');
    else if (a === '--spool' || a.startsWith('--spool=')) value('spool');
    else if (a === '--instance' || a === '-i' || a.startsWith('--instance=')) value('instance');
    else words.push(a);
  }
  // `wal push <file>`, `log push <file>`, or just `<file>`: the file is the last word.
  if (words.length) out.file = words[words.length - 1];
  return out;
}

/** Starts `ebr log agent` for this spool, detached, its output into agent.log; false when it cannot. */
function startAgent(p: SpoolPaths, args: PushArgs): boolean {
  if (!args.instance) return false;
  const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cli/main.js');
  try {
    const log = openSync(p.logFile, 'a', 0o640);
    const child = spawn(process.execPath, [main, ...(args.config ? ['--config', args.config] : []), 'log', 'agent', '--instance', args.instance, '--started-by-push'], {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: '/',
    });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}

function fail(code: number, message: string, hint?: string): never {
  process.stderr.write(`ebr: error: ${message}\n${hint ? `ebr: hint: ${hint}\n` : ''}`);
  process.exit(code);
}

const args = parse(process.argv.slice(2));
if (!args.spool || !args.file) {
  fail(2, 'usage: agent-push.js [--config FILE] --spool DIR [wal|log push] --instance NAME FILE', 'print the archive_command with `ebr log agent --print-command --instance NAME`');
}
const paths = spoolPaths(path.resolve(args.spool));
try {
  spoolLog(paths, args.file);
} catch (err) {
  if (err instanceof SpoolError) fail(1, err.message, err.hint);
  fail(1, `cannot spool ${args.file}: ${(err as Error).message}`);
}
// Spooled durably: success holds whether or not an agent runs now; the next agent takes the queue.
if (runningAgent(paths) === undefined && !startAgent(paths, args)) {
  process.stderr.write(`ebr: warning: ${args.file} is spooled in ${paths.queue}, but no log agent runs and none could be started; run \`ebr log agent --instance ${args.instance ?? 'NAME'}\`\n`);
}
