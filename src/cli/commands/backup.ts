import type { Command } from 'commander';
import { runBackup } from '../../workflow/backup.js';
import { planBackup } from '../../workflow/plan-backup.js';
import { groupOf, runGroupBackup } from '../../workflow/group.js';
import { EbrError } from '../../errors.js';
import type { BackupType } from '../../archive/manifest.js';
import { applyRetention, type RetentionResult } from '../../schedule/retention.js';
import { cliOf } from '../context.js';
import { bytes, ms, planText } from '../format.js';
import { purgeLines } from './retention.js';

export function register(program: Command): void {
  program
    .command('backup')
    .description('take one backup: discover, block, snapshot, unblock, stream to the target (full, or only the blocks that changed)')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--dry-run', 'print every statement and command it would run and every file it would read and write, in order; connect to nothing')
    .option('-g, --group <name>', 'back up every member of a consistency group inside one window (groups: in the config)')
    .option('--type <type>', 'full; incr: only the blocks changed since the newest kept backup; diff: since the newest full', 'full')
    .action(async (opts: { instance?: string; dryRun?: boolean; group?: string; type: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const type = backupTypeOf(opts.type);
      if (opts.group && type !== 'full') throw new EbrError('usage', `--type ${type} is not available with --group: a group's members are backed up full`, { hint: `run \`ebr backup --group ${opts.group}\` without --type` });
      if (opts.group) {
        if (opts.instance || opts.dryRun) throw new EbrError('usage', '--group takes neither --instance nor --dry-run', { hint: `run \`ebr backup --group ${opts.group}\`, or --dry-run per member with --instance` });
        const group = groupOf(cli.config(), opts.group);
        const catalog = await cli.catalog();
        const bar = cli.progress();
        const r = await runGroupBackup({ config: cli.config(), group, catalog, signal: cli.signal, ...(bar.listener ? { onProgress: bar.listener } : {}) }).finally(() => bar.stop());
        cli.print(r, () =>
          [
            `group ${r.group} backup ${r.groupId} complete: ${r.members.length} members blocked together at ${r.instant}, group window ${ms(r.windowMs ?? null)}`,
            ...r.members.map((m) => `  ${m.instance}: backup ${m.backupId}, ${bytes(m.bytes)}, own window ${ms(m.blockWindowMs)}`),
          ].join('\n'),
        );
        return;
      }
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      if (opts.dryRun) {
        const p = planBackup(cli.config(), instance, catalog, type);
        cli.print({ dryRun: true, ...p }, () => planText(`backup of ${p.instance} (${p.vendor}): nothing below was run; files from ${p.filesFrom}`, p.steps));
        return;
      }
      const bar = cli.progress();
      try {
        const r = await runBackup({ config: cli.config(), instance, catalog, signal: cli.signal, type, ...(bar.listener ? { onProgress: bar.listener } : {}) });
        bar.stop();
        // Retention after every complete backup, as the daemon does: cron calling `ebr backup` needs nothing else.
        // Its failure is a warning: the backup itself is complete and stays so.
        const retention = instance.retention ? await applyRetention(catalog, instance, { signal: cli.signal }).catch((err: Error) => ({ error: err.message })) : undefined;
        // A warning is on stderr even under --quiet: something is left for the next command to repair.
        if (!cli.opts.json) for (const w of [...(r.warnings ?? []), ...retentionWarnings(retention)]) process.stderr.write(`ebr: warning: ${w}\n`);
        cli.print({ ...r, ...(retention ? { retention } : {}) }, () =>
          [
            `${r.type === 'full' ? '' : `${r.type === 'incr' ? 'incremental' : 'differential'} `}backup ${r.backupId} of ${r.instance} complete${r.parent ? ` (compared with ${r.parent})` : ''}`,
            `  spaces ${r.spaces}, chunks ${r.chunks}, ${bytes(r.bytes)} read${r.blocks ? `, ${r.blocks.changed} of ${r.blocks.total} blocks changed and stored` : ''}`,
            `  block window ${ms(r.blockWindowMs)} (${Object.entries(r.windowSteps).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})`,
            `  archive ${r.location}`,
            ...(retention && !('error' in retention) ? retentionSummary(retention) : []),
          ].join('\n'),
        );
      } finally {
        bar.stop();
      }
    });
}

export function backupTypeOf(t: string): BackupType {
  if (t === 'full' || t === 'incr' || t === 'diff') return t;
  throw new EbrError('usage', `unknown backup type ${JSON.stringify(t)}`, { hint: 'say --type full, --type incr (changed since the newest kept backup) or --type diff (changed since the newest full)' });
}

/** What retention did after the backup, in a few lines (`ebr retention --dry-run` shows every decision). */
function retentionSummary(r: RetentionResult): string[] {
  const lines = [`  retention: kept ${r.kept.length} backup(s)${r.removed.length ? `, removed ${r.removed.join(', ')}` : ', removed none'}${r.skipped ? ` (waits for the next run: ${r.skipped})` : ''}`];
  if (r.logs) lines.push(...purgeLines(r.logs).map((l) => `  ${l}`));
  if (r.logsSkipped) lines.push(`  logs: not purged: ${r.logsSkipped}`);
  return lines;
}

function retentionWarnings(r: RetentionResult | { error: string } | undefined): string[] {
  if (!r) return [];
  if ('error' in r) return [`retention failed after the backup: ${r.error}`];
  return [
    ...(r.refused ?? []).map((x) => `retention could not remove backup ${x.backupId}${x.archiveWhole ? ' (kept; tried again next time)' : ' (partly removed; it no longer restores)'}: ${x.error}`),
    ...(r.logsError ? [`purging the log archive failed: ${r.logsError}`] : []),
  ];
}
