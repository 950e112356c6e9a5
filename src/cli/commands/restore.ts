import type { Command } from 'commander';
import { planRestore, runRestore } from '../../workflow/restore.js';
import { cliOf } from '../context.js';
import { bytes, planText } from '../format.js';

export function register(program: Command): void {
  program
    .command('restore')
    .description('restore a backup, whole or only some spaces; every byte is checked before anything is replaced')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('-b, --backup <id>', 'backup id, or latest', 'latest')
    .option('-p, --partial <space...>', 'restore only these spaces (critical spaces are refused)')
    .option('--to <dir>', 'restore into this directory instead of the instance\'s own paths')
    .option('--until <time>', 'roll forward to this time (ISO 8601 or YYYY-MM-DD HH:MM:SS[±HH:MM]; local time without an offset)')
    .option('--dry-run', 'print every file it would read and write and every statement and command it would run, in order; change nothing')
    .action(async (opts: { instance?: string; backup: string; partial?: string[]; to?: string; until?: string; dryRun?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const options = {
        config: cli.config(),
        instance,
        catalog,
        backupId: opts.backup,
        ...(opts.partial ? { partial: opts.partial } : {}),
        ...(opts.to ? { to: opts.to } : {}),
        ...(opts.until ? { until: opts.until } : {}),
        signal: cli.signal,
      };
      if (opts.dryRun) {
        const p = await planRestore(options);
        cli.print({ dryRun: true, ...p }, () => planText(`restore of backup ${p.backupId} (${p.mode === 'partial' ? `spaces ${p.spaces.join(', ')}` : 'every space'})${p.targetDir ? ` into ${p.targetDir}` : ''}: nothing below was run`, p.steps));
        return;
      }
      const bar = cli.progress();
      const r = await runRestore({ ...options, ...(bar.listener ? { onProgress: bar.listener } : {}) }).finally(() => bar.stop());
      cli.print(r, () =>
        [
          `restored ${r.mode === 'partial' ? `space ${r.spaces.join(', ')}` : 'every space'} of backup ${r.backupId}${r.targetDir ? ` into ${r.targetDir}` : ''}`,
          `  ${r.files} files, ${bytes(r.bytes)}, every digest checked before anything was replaced`,
          ...r.notes.map((n) => `  ${n}`),
        ].join('\n'),
      );
    });
}
