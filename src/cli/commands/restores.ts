import type { Command } from 'commander';
import { listRestores } from '../../catalog/restores.js';
import { cliOf } from '../context.js';
import { table } from '../format.js';

export function register(program: Command): void {
  program
    .command('restores')
    .description('list past restores with their outcome, newest first (an interrupted one is finished or undone first)')
    .option('-i, --instance <name>', 'only this instance')
    .option('-b, --backup <id>', 'only restores of this backup')
    .action(async (opts: { instance?: string; backup?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      if (opts.instance) cli.instance(opts.instance);
      const rows = listRestores(await cli.catalog(), { ...(opts.instance ? { instance: opts.instance } : {}), ...(opts.backup ? { backupId: opts.backup } : {}) });
      cli.print(
        rows.map((r) => ({
          id: r.id,
          backupId: r.backup_id,
          instance: r.instance,
          mode: r.mode,
          spaces: JSON.parse(r.spaces) as string[],
          targetDir: r.target_dir,
          until: r.until,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
          status: r.status,
          step: r.step,
          outcome: r.outcome,
          error: r.error ? JSON.parse(r.error) : null,
        })),
        () =>
          rows.length === 0
            ? 'no restores in the catalog yet'
            : table(
                ['ID', 'BACKUP', 'INSTANCE', 'MODE', 'INTO', 'STARTED', 'STATUS', 'OUTCOME'],
                rows.map((r) => [r.id, r.backup_id, r.instance ?? '', r.mode, r.target_dir ?? '(in place)', r.started_at.replace('T', ' ').slice(0, 19), r.status, (r.outcome ?? (r.error ? (JSON.parse(r.error) as { message?: string }).message ?? '' : '')).slice(0, 100)]),
              ),
      );
    });
}
