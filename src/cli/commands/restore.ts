import type { Command } from 'commander';
import path from 'node:path';
import { planRestore, runRestore } from '../../workflow/restore.js';
import { groupOf, runGroupRestore } from '../../workflow/group.js';
import { EbrError } from '../../errors.js';
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
    .option('--delta', 'compare the files on disk with the backup block by block and write only what differs (identical files are left alone)')
    .option('--dry-run', 'print every file it would read and write and every statement and command it would run, in order; change nothing')
    .option('-g, --group <name>', 'restore every member of one group backup (--backup GROUP-ID, default the newest complete one) to one instant; --to DIR puts member M under DIR/M')
    .action(async (opts: { instance?: string; backup: string; partial?: string[]; to?: string; until?: string; dryRun?: boolean; group?: string; delta?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      if (opts.group) {
        if (opts.instance || opts.partial || opts.dryRun) throw new EbrError('usage', '--group takes no --instance, --partial or --dry-run', { hint: 'a group is restored whole; restore one member with --instance' });
        const group = groupOf(cli.config(), opts.group);
        const r = await runGroupRestore({ config: cli.config(), group, catalog: await cli.catalog(), groupId: opts.backup, ...(opts.to ? { to: path.resolve(opts.to) } : {}), ...(opts.until ? { until: opts.until } : {}), signal: cli.signal });
        cli.print(r, () =>
          [
            `restored group ${r.group} backup ${r.groupId}${r.until ? ` to ${r.until}` : ' to the instant its members were blocked together'}`,
            ...r.members.flatMap((m) => [`  ${m.targetDir ?? '(in place)'}: backup ${m.backupId}, ${m.files} files, ${bytes(m.bytes)}`, ...m.notes.map((n) => `    ${n}`)]),
          ].join('\n'),
        );
        return;
      }
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
        ...(opts.delta ? { delta: true } : {}),
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
          ...(r.chain ? [`  blocks read from the chain: ${r.chain.join(', ')}`] : []),
          ...(r.delta ? [`  delta: ${r.delta.unchangedFiles} file(s) identical on disk left alone; ${r.delta.changedBlocks} of ${r.delta.totalBlocks} blocks of the others written`] : []),
          ...r.notes.map((n) => `  ${n}`),
        ].join('\n'),
      );
    });
}
