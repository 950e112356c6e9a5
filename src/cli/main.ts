#!/usr/bin/env node
/** The ebr command line: parse, call one library function, print. Errors become a message, a hint and an exit code. */
import { Command, CommanderError } from 'commander';
import { EbrError } from '../errors.js';
import * as backup from './commands/backup.js';
import * as catalog from './commands/catalog.js';
import * as daemon from './commands/daemon.js';
import * as drill from './commands/drill.js';
import * as demo from '../../demo/demo-command.js';
import * as exportBackup from './commands/export.js';
import * as init from './commands/init.js';
import * as list from './commands/list.js';
import * as restore from './commands/restore.js';
import * as restores from './commands/restores.js';
import * as show from './commands/show.js';
import * as spaces from './commands/spaces.js';
import * as status from './commands/status.js';
import * as verify from './commands/verify.js';
import * as log from './commands/log.js';
import * as release from './commands/release.js';
import * as retention from './commands/retention.js';

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

for (const command of [init, demo, spaces, backup, list, show, verify, exportBackup, restore, restores, drill, status, catalog, daemon, log, release, retention]) command.register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = report(err);
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
