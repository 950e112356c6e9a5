#!/usr/bin/env node
/** The ebr command line: parse, call one library function, print. Errors become a message, a hint and an exit code. */
import { Command, CommanderError } from 'commander';
import { EbrError } from '../errors.js';

interface CommandModule {
  register(program: Command): void;
}

/**
 * Every command module, in the order `ebr --help` lists them, with the top-level command names each
 * registers. A run loads only the module of the command it names: `ebr wal get` runs once per WAL
 * segment from restore_command, and loading every workflow for it cost more than the work itself.
 */
const commandModules: Array<{ names: string[]; load: () => Promise<CommandModule> }> = [
  { names: ['init'], load: () => import('./commands/init.js') },
  { names: ['demo'], load: () => import('../../demo/demo-command.js') },
  { names: ['spaces'], load: () => import('./commands/spaces.js') },
  { names: ['backup'], load: () => import('./commands/backup.js') },
  { names: ['list'], load: () => import('./commands/list.js') },
  { names: ['show'], load: () => import('./commands/show.js') },
  { names: ['verify'], load: () => import('./commands/verify.js') },
  { names: ['export'], load: () => import('./commands/export.js') },
  { names: ['restore'], load: () => import('./commands/restore.js') },
  { names: ['restores'], load: () => import('./commands/restores.js') },
  { names: ['drill'], load: () => import('./commands/drill.js') },
  { names: ['status'], load: () => import('./commands/status.js') },
  { names: ['catalog'], load: () => import('./commands/catalog.js') },
  { names: ['daemon'], load: () => import('./commands/daemon.js') },
  // Besides `log`, the adapters' own names for it (logs.aliases), which log.ts registers from the registry.
  { names: ['log'], load: () => import('./commands/log.js') },
  { names: ['release'], load: () => import('./commands/release.js') },
  { names: ['retention', 'pin', 'pins', 'unpin'], load: () => import('./commands/retention.js') },
];
const logModule = commandModules.find((m) => m.names.includes('log'))!;

const program = new Command('ebr')
  .description('External backup and restore for database servers: block briefly, freeze storage, stream the frozen files to an archive.')
  .version('0.1.0')
  .option('-c, --config <file>', 'config file (default: $EBR_CONFIG, else ./ebr.yaml)')
  .option('--json', 'print one JSON document on stdout and nothing else there')
  .option('-q, --quiet', 'print nothing but errors')
  .option('--debug', 'print stack traces of errors')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(`ebr: ${str.replace(/^error: /, '')}`) });

try {
  for (const module of await modulesFor(commandName(process.argv.slice(2)))) (await module.load()).register(program);
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
}

/** The first word of argv that is not a global option or its value: the command asked for, if any; 'help' when --help comes first. */
function commandName(argv: string[]): string | undefined {
  const takesValue = new Set(program.options.filter((o) => o.required || o.optional).flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined)));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return argv[i + 1];
    if (!arg.startsWith('-') || arg === '-') return arg;
    if (arg === '-h' || arg === '--help') return 'help'; // `ebr --help backup` is the program's help, listing every command
    if (takesValue.has(arg)) i++; // `--config FILE`, `-c FILE`; `--config=FILE` and `-cFILE` are one word
  }
  return undefined;
}

/**
 * The modules to register: the named command's alone; every module for help, for no command, for a
 * name no module has (commander then prints its usual help or error, with every command listed).
 */
async function modulesFor(name: string | undefined): Promise<typeof commandModules> {
  if (name === undefined || name === 'help') return commandModules;
  const own = commandModules.find((m) => m.names.includes(name));
  if (own) return [own];
  const { adapters } = await import('../registry.js');
  if (adapters().some((a) => a.logs?.aliases?.includes(name))) return [logModule];
  return commandModules;
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  const debug = process.argv.includes('--debug');
  const json = process.argv.includes('--json');
  if (err instanceof EbrError) {
    if (json) process.stdout.write(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    const where = [err.context.instance && `instance ${err.context.instance}`, err.context.backupId && `backup ${err.context.backupId}`, err.context.phase && `phase ${err.context.phase}`]
      .filter(Boolean)
      .join(', ');
    process.stderr.write(`ebr: error: ${err.message}${where ? ` (${where})` : ''}\n`);
    if (err.releaseError) process.stderr.write(`ebr: also, releasing the database failed: ${(err.releaseError as Error).message}\n`);
    if (err.hint) process.stderr.write(`ebr: hint: ${err.hint}\n`);
    if (debug) process.stderr.write(`${err.stack}\n${err.cause instanceof Error ? `cause: ${err.cause.stack}\n` : ''}`);
    return err.exitCode;
  }
  if (json) process.stdout.write(`${JSON.stringify({ error: { code: 'internal', message: String((err as Error)?.message ?? err) } }, null, 2)}\n`);
  process.stderr.write(`ebr: internal error: ${(err as Error)?.message ?? String(err)}\n`);
  process.stderr.write(debug ? `${(err as Error)?.stack}\n` : 'ebr: hint: run again with --debug for the stack trace, and report it\n');
  return 1;
}
