import type { Command } from 'commander';
import { runBackup } from '../../workflow/backup.js';
import { cliOf } from '../context.js';
import { bytes, ms } from '../format.js';

export function register(program: Command): void {
  program
    .command('backup')
    .description('take one full backup: discover, block, snapshot, unblock, stream to the target')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const bar = cli.progress();
      try {
        const r = await runBackup({ config: cli.config(), instance, catalog, signal: cli.signal, ...(bar.listener ? { onProgress: bar.listener } : {}) });
        bar.stop();
        // A warning is on stderr even under --quiet: something is left for the next command to repair.
        if (!cli.opts.json) for (const w of r.warnings ?? []) process.stderr.write(`ebr: warning: ${w}\n`);
        cli.print(r, () =>
          [
            `backup ${r.backupId} of ${r.instance} complete`,
            `  spaces ${r.spaces}, chunks ${r.chunks}, ${bytes(r.bytes)} streamed`,
            `  block window ${ms(r.blockWindowMs)} (${Object.entries(r.windowSteps).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})`,
            `  archive ${r.location}`,
          ].join('\n'),
        );
      } finally {
        bar.stop();
      }
    });
}
