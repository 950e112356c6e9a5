import type { Command } from 'commander';
import type { InstanceConfig } from '../../config/load.js';
import { EbrError } from '../../errors.js';
import { archivedRanges } from '../../logs/binlog-sync.js';
import { logStoreOf } from '../../workflow/context.js';
import { findAdapter } from '../../registry.js';
import { adapterOf, instanceContext } from '../../workflow/context.js';
import { cliOf } from '../context.js';
import { bytes, table } from '../format.js';

/**
 * `ebr binlog sync` closes the server's current binlog and archives every closed binlog the log archive
 * lacks, each with its digest and its GTID/time range (run it from cron between backups; every backup
 * runs it too). `ebr binlog list` shows what the archive holds, which is what `--until` can reach.
 */
export function register(program: Command): void {
  const binlog = program.command('binlog').description('the MariaDB/MySQL binlog archive that point-in-time restores replay');
  binlog
    .command('sync')
    .description('close the current binlog (FLUSH BINARY LOGS) and archive every closed binlog the archive lacks')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = binlogInstance(cli.instance(opts.instance));
      const r = await adapterOf(instance).syncLogs!(instanceContext(cli.config(), instance), cli.signal);
      cli.print({ instance: instance.name, ...r }, () =>
        [
          `archived ${r.stored.length} binlog(s)${r.stored.length ? `: ${r.stored.join(', ')}` : ''}; ${r.present.length} already archived; ${r.current ?? '(none)'} is being written`,
          ...(r.gaps.length ? [`warning: the server purged ${r.gaps.join(', ')} before they were archived; --until cannot cross that gap`] : []),
        ].join('\n'),
      );
    });
  binlog
    .command('list')
    .description('the archived binlogs with their GTID states and event times')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = binlogInstance(cli.instance(opts.instance));
      const ranges = await archivedRanges(logStoreOf(instance, 'binlog'), cli.signal);
      const time = (s?: number) => (s ? new Date(s * 1000).toISOString().replace('.000Z', 'Z') : '');
      cli.print({ instance: instance.name, binlogs: ranges }, () =>
        table(
          ['BINLOG', 'SIZE', 'CREATED', 'LAST EVENT', 'TRANSACTIONS', 'GTID AT START', 'GTID AT END'],
          ranges.map((r) => [r.name, bytes(r.size), time(r.createdEpoch), time(r.lastEventEpoch), r.transactions, r.gtidStateAtStart ?? '', r.gtidStateAtEnd ?? '']),
        ),
      );
    });
}

function binlogInstance(instance: InstanceConfig): InstanceConfig {
  const adapter = findAdapter(instance.adapter);
  if (adapter?.capabilities.logArchive !== 'binlog' || !adapter.syncLogs) {
    throw new EbrError('usage', `instance ${instance.name} (adapter ${instance.adapter}) keeps no binlog archive`, {
      hint: 'name a MariaDB or MySQL instance with --instance',
      context: { instance: instance.name },
    });
  }
  return instance;
}
