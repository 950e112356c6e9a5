import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { configPath } from '../../config/load.js';
import { starterConfig } from '../../config/starter.js';
import { adapterNames } from '../../registry.js';
import { EbrError } from '../../errors.js';
import { cliOf } from '../context.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('write a commented starter ebr.yaml')
    .option('--force', 'overwrite an existing file')
    .action(async (opts: { force?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const file = configPath(cli.opts.config);
      if (existsSync(file) && !opts.force) {
        throw new EbrError('usage', `${file} already exists; ebr init does not overwrite it`, { hint: 'pass --force to replace it, or --config OTHER.yaml' });
      }
      writeFileSync(file, starterConfig(adapterNames()), { mode: 0o640 });
      cli.print({ written: file }, () => `wrote ${file}; edit the instance, then run \`ebr spaces\` to see what a backup would take`);
    });
}
