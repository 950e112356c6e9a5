import type { Command } from 'commander';
import { metricsText, writeTextfile } from '../../status/metrics.js';
import { collectStatus, type InstanceStatus } from '../../status/status.js';
import { cliOf } from '../context.js';
import { table } from '../format.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('per instance: the last backup and its age against the schedule, failures since, the last drill, the log archive (rewrites status.textfile when configured)')
    .option('-i, --instance <name>', 'only this instance')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      if (opts.instance) cli.instance(opts.instance);
      const config = cli.config();
      const doc = await collectStatus(config, await cli.catalog(), { ...(opts.instance ? { instance: opts.instance } : {}), recent: 10 });
      if (config.status?.textfile) await writeTextfile(config.status.textfile, await metricsText(doc));
      cli.print(doc, () =>
        table(
          ['INSTANCE', 'LAST BACKUP', 'AGE', 'SCHEDULE', 'FAILURES', 'LAST DRILL', 'LOG ARCHIVE'],
          doc.instances.map((s) => [s.instance, s.lastBackup?.id ?? '(none)', ageText(s), scheduleText(s), failureText(s), drillText(s), logText(s)]),
        ),
      );
    });
}

export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}

function ageText(s: InstanceStatus): string {
  return `${age(s.lastBackup?.ageS)}${s.overdue ? ' OVERDUE' : ''}`;
}

function scheduleText(s: InstanceStatus): string {
  return s.schedule ? `${s.schedule} (every ${age(s.scheduleEveryS)})` : '-';
}

function failureText(s: InstanceStatus): string {
  if (s.failures.length === 0) return '0';
  const f = s.failures[0]!;
  return `${s.failures.length}, last ${f.id}: ${(f.error ?? '').slice(0, 60)}`;
}

function drillText(s: InstanceStatus): string {
  if (!s.lastDrill) return 'never';
  const d = s.lastDrill;
  return `${d.status} ${age(d.ageS)} ago (${d.backupId})${d.status === 'failed' && s.lastPassedDrillAt ? `, last passed ${s.lastPassedDrillAt.replace('T', ' ').slice(0, 16)}` : ''}`;
}

function logText(s: InstanceStatus): string {
  if (!s.log) return '-';
  if (s.log.error) return `${s.log.kind}: ${s.log.error.slice(0, 60)}`;
  const lag = s.log.lag;
  const behind = lag ? `; server at ${lag.current}${lag.behind !== undefined ? `, ${lag.behind} behind` : ''}${lag.failing ? `, FAILING since ${lag.failing.at} (${lag.failing.log})` : ''}` : '';
  return `${s.log.kind}: ${s.log.archived} archived, newest ${s.log.newest ?? '-'}${behind}`;
}
