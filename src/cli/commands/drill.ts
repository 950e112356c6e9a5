import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import { runDrill, type DrillResult } from '../../workflow/drill.js';
import { cliOf } from '../context.js';
import { ms } from '../format.js';

export function register(program: Command): void {
  program
    .command('drill')
    .description('restore a backup into scratch, start the database on it, replay the logs, run its own checks, record the result and remove the scratch (exit 1 on any failure)')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('-b, --backup <id>', 'backup id, or latest', 'latest')
    .option('-p, --partial <space...>', 'drill only these spaces (critical spaces are refused, as by restore)')
    .option('--scratch <dir>', 'where the scratch copy is made (default: drill.scratch in the config, else drills/ beside the catalog)')
    .action(async (opts: { instance?: string; backup: string; partial?: string[]; scratch?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const r = await runDrill({ config: cli.config(), instance, catalog, backupId: opts.backup, ...(opts.partial ? { partial: opts.partial } : {}), ...(opts.scratch ? { scratch: opts.scratch } : {}), signal: cli.signal });
      if (r.status === 'passed') {
        cli.print(r, () => drillText(r));
        return;
      }
      // The report goes out whole (what was checked before the failure), then the failure as every error is reported.
      if (cli.opts.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else if (!cli.opts.quiet) process.stdout.write(`${drillText(r)}\n`);
      const err = new EbrError('restore', r.error?.message ?? `drill of backup ${r.backupId} failed`, {
        ...(r.error?.hint ? { hint: r.error.hint } : {}),
        context: { instance: r.instance, backupId: r.backupId, phase: 'drill' },
      });
      if (cli.opts.json) {
        process.stderr.write(`ebr: error: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw err;
    });
}

export function drillText(r: DrillResult): string {
  const timing = [`restore ${ms(r.restoreMs)}`, r.recoverMs !== undefined ? `recover ${ms(r.recoverMs)}` : '', r.checkMs !== undefined ? `checks ${ms(r.checkMs)}` : ''].filter(Boolean).join(', ');
  const log = r.logApplied ? `  logs applied: ${r.logApplied.count}${r.logApplied.first ? ` (${r.logApplied.first}${r.logApplied.last && r.logApplied.last !== r.logApplied.first ? ` … ${r.logApplied.last}` : ''})` : ''}${r.logApplied.endedAt ? `, replay ended at ${r.logApplied.endedAt}` : ''}` : '';
  return [
    `drill ${r.drillId} of backup ${r.backupId} (${r.instance}${r.spaces.length ? `, spaces ${r.spaces.join(', ')}` : ''}): ${r.status.toUpperCase()}`,
    `  ${timing}`,
    ...r.checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.ok && c.detail.length < 100 ? `: ${c.detail}` : `\n${c.detail.split('\n').slice(0, 8).map((l) => `         ${l}`).join('\n')}`}`),
    ...(log ? [log] : []),
    ...(r.dbmsChecked ? [] : ['  the DBMS check was not run: this adapter has no drill']),
    ...r.notes.map((n) => `  ${n}`),
    `  scratch ${r.scratch} ${r.scratchRemoved ? 'removed' : 'NOT removed'}`,
  ].join('\n');
}
