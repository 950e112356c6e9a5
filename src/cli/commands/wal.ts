import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import { logStoreOf } from '../../workflow/context.js';
import { getWal, pushWal } from '../../logs/wal-archive.js';
import { findAdapter } from '../../registry.js';
import type { InstanceConfig } from '../../config/load.js';
import { cliOf } from '../context.js';

/**
 * `ebr wal push` and `ebr wal get`: what PostgreSQL runs as archive_command and restore_command. Quiet
 * on success (the server logs whatever they print); exit 0 when done, non-zero otherwise, which makes
 * the server retry a push and ends recovery at the first segment the archive does not have.
 */
export function register(program: Command): void {
  const wal = program.command('wal').description("PostgreSQL's WAL archive: archive_command and restore_command call these");
  wal
    .command('push')
    .description('store a finished WAL file in the instance\'s log archive (archive_command = \'ebr wal push --instance N %p\')')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .argument('<path>', 'the WAL file (%p)')
    .action(async (file: string, opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = walInstance(cli.instance(opts.instance));
      const outcome = await pushWal(logStoreOf(instance, 'wal'), file, cli.signal, { instance: instance.name, phase: 'wal push' });
      if (cli.opts.json) cli.print({ pushed: file, outcome }, () => '');
    });
  wal
    .command('get')
    .description('fetch a WAL file from the log archive, digest checked (restore_command = \'ebr wal get --instance N %f %p\')')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .argument('<name>', 'the WAL file name (%f)')
    .argument('<dest>', 'where to put it (%p)')
    .action(async (name: string, dest: string, opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = walInstance(cli.instance(opts.instance));
      const found = await getWal(logStoreOf(instance, 'wal'), name, dest, cli.signal, { instance: instance.name, phase: 'wal get' });
      if (cli.opts.json) cli.print({ name, found }, () => '');
      // Not found is how recovery learns it reached the end of the archive: a plain non-zero exit, no message.
      if (!found) process.exitCode = 1;
    });
}

function walInstance(instance: InstanceConfig): InstanceConfig {
  if (findAdapter(instance.adapter)?.capabilities.logArchive !== 'wal') {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps no WAL archive`, {
      hint: 'name a PostgreSQL instance with --instance',
      context: { instance: instance.name },
    });
  }
  return instance;
}
