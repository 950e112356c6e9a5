import type { Command } from 'commander';
import { runBackup } from '../../workflow/backup.js';
import { planBackup } from '../../workflow/plan-backup.js';
import { cliOf } from '../context.js';
import { bytes, ms, planText } from '../format.js';

export function register(program: Command): void {
  program
    .command('backup')
    .description('take one full backup: discover, block, snapshot, unblock, stream to the target')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--dry-run', 'print every statement and command it would run and every file it would read and write, in order; connect to nothing')
    .action(async (opts: { instance?: string; dryRun?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      if (opts.dryRun) {
        const p = planBackup(cli.config(), instance, catalog);
        cli.print({ dryRun: true, ...p }, () => planText(`backup of ${p.instance} (${p.vendor}): nothing below was run; files from ${p.filesFrom}`, p.steps));
        return;
      }
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
