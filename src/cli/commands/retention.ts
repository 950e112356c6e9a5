import type { Command } from 'commander';
import { findBackup } from '../../catalog/backups.js';
import { pinBackup, pinsOf, unpinBackup } from '../../catalog/pins.js';
import { EbrError } from '../../errors.js';
import { applyRetention, type RetentionResult } from '../../schedule/retention.js';
import { describeRules } from '../../schedule/retention-policy.js';
import type { LogPurgeResult } from '../../workflow/log-purge.js';
import { cliOf } from '../context.js';
import { table } from '../format.js';

/** `ebr retention [--dry-run]`, `ebr pin <backup>`, `ebr unpin <backup>`, `ebr pins`. */
export function register(program: Command): void {
  program
    .command('retention')
    .description('apply retention: remove the backups no rule keeps and the logs no kept backup needs (it also runs after every backup)')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--dry-run', 'change nothing; show every backup with the rules that keep it or why it would go, and the logs that would be purged')
    .action(async (opts: { instance?: string; dryRun?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      if (!instance.retention) {
        throw new EbrError('usage', `instance ${instance.name} has no retention rules, so nothing is ever removed`, {
          hint: 'add e.g. `retention: { full: 7, daily: 7, weekly: 4, monthly: 6, logDays: 7 }` to the instance',
          context: { instance: instance.name },
        });
      }
      const r = await applyRetention(catalog, instance, { dryRun: opts.dryRun === true, signal: cli.signal });
      cli.print({ instance: instance.name, rules: instance.retention, ...r }, () => [`retention of ${instance.name} (${describeRules(instance.retention!)})${r.dryRun ? ': nothing below was done' : ''}`, ...retentionLines(r)].join('\n'));
      if (r.logsError || r.refused?.some((x) => !x.archiveWhole)) process.exitCode = 1;
    });
  program
    .command('pin')
    .description('keep a backup, and the logs its restore needs, whatever the retention rules say')
    .argument('<backup-id>', 'backup id, or latest')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--note <text>', 'why it is kept (shown by `ebr pins`)')
    .action(async (id: string, opts: { instance?: string; note?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const b = findBackup(catalog, id, instance.name);
      if (b.status !== 'complete' || b.removed_at) {
        throw new EbrError('usage', `backup ${b.id} is ${b.removed_at ? 'removed' : b.status}; only a complete backup can be pinned`, { hint: '`ebr list` shows the complete ones', context: { instance: instance.name, backupId: b.id } });
      }
      pinBackup(catalog, b.id, opts.note);
      cli.print({ pinned: b.id, instance: instance.name }, () => `backup ${b.id} of ${instance.name} is pinned: retention keeps it and the logs its restore needs`);
    });
  program
    .command('pins')
    .description('list the pinned backups')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const pins = pinsOf(await cli.catalog(), instance.name);
      cli.print(pins, () => (pins.length ? table(['BACKUP', 'PINNED', 'NOTE'], pins.map((p) => [p.backup_id, p.pinned_at, p.note ?? ''])) : `no backup of ${instance.name} is pinned`));
    });
  program
    .command('unpin')
    .description('let retention decide about a pinned backup again')
    .argument('<backup-id>', 'backup id, or latest')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (id: string, opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const b = findBackup(catalog, id, instance.name);
      const was = unpinBackup(catalog, b.id);
      cli.print({ unpinned: b.id, wasPinned: was }, () => (was ? `backup ${b.id} is no longer pinned; the next retention run applies the rules to it` : `backup ${b.id} was not pinned`));
    });
}

/** Retention's outcome as lines, for `ebr retention` and after `ebr backup`. */
export function retentionLines(r: RetentionResult): string[] {
  const lines: string[] = [];
  if (r.skipped) lines.push(`retention waits for the next run: ${r.skipped}`);
  if (r.decisions?.length) {
    const removed = new Set(r.removed);
    const refused = new Map((r.refused ?? []).map((x) => [x.backupId, x]));
    lines.push(
      table(
        ['BACKUP', 'STARTED', r.dryRun ? 'WOULD' : 'DONE', 'WHY'],
        r.decisions.map((d) => [d.id, d.startedAt, d.keep ? 'keep' : refused.has(d.id) ? 'refused' : r.dryRun || removed.has(d.id) ? 'remove' : 'keep', refused.get(d.id)?.error ?? d.why.join('; ')]),
      ),
    );
  }
  if (r.logs) lines.push(...purgeLines(r.logs));
  if (r.logsSkipped) lines.push(`logs: not purged: ${r.logsSkipped}`);
  if (r.logsError) lines.push(`logs: purge failed: ${r.logsError}`);
  return lines;
}

export function purgeLines(p: LogPurgeResult): string[] {
  const verb = p.dryRun ? 'would remove' : 'removed';
  const names = p.removed.map((x) => x.name);
  return [
    `logs: ${verb} ${names.length} ${p.kind} file(s)${names.length ? ` (${names[0]}${names.length > 1 ? ` … ${names.at(-1)}` : ''})` : ''}, ${p.kept} kept; oldest kept ${p.oldestKept.join(', ') || '(none)'}`,
    `logs: --until reaches from the end of backup ${p.anchor} on${p.consistentOnly.length ? `; ${p.consistentOnly.length} older backup(s) keep only the logs of their own restore` : ''}`,
    ...p.notes.map((n) => `logs: ${n}`),
  ];
}
