import type { Command } from 'commander';
import { runDaemon } from '../../schedule/daemon.js';
import { cliOf } from '../context.js';

export function register(program: Command): void {
  program
    .command('daemon')
    .description('run the backups on the schedules in the config, with retention; one JSON line per event; stops on SIGINT/SIGTERM')
    .action(async (_opts: unknown, cmd: Command) => {
      const cli = cliOf(cmd);
      const catalog = await cli.catalog();
      await runDaemon({ config: cli.config(), catalog, signal: cli.signal, log: (e) => process.stdout.write(`${JSON.stringify(e)}\n`) });
    });
}
