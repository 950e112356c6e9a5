import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import type { LogChainReport, LogGap } from '../../logs/log-lifecycle.js';
import { checkLogChain } from '../../workflow/log-purge.js';
import { runVerify } from '../../workflow/verify.js';
import { cliOf } from '../context.js';
import { bytes } from '../format.js';

export function register(program: Command): void {
  program
    .command('verify')
    .description('re-read a backup\'s archive and check every digest, and that the log archive holds every log the retained backups need (exit 1 when anything is damaged or missing)')
    .argument('[backup-id]', 'backup id, or latest', 'latest')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--no-logs', "skip the check of the log archive's continuity")
    .action(async (id: string, opts: { instance?: string; logs: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const bar = cli.progress();
      const r = await runVerify({ catalog, instance, backupId: id, signal: cli.signal, ...(bar.listener ? { onProgress: bar.listener } : {}) }).finally(() => bar.stop());
      // The log chain every retained backup's restore and --until read: a gap there is as bad as a damaged member.
      const chain = opts.logs ? await checkLogChain({ catalog, instance, signal: cli.signal }) : undefined;
      const gaps = chain?.gaps ?? [];
      if (r.damaged.length === 0 && gaps.length === 0) {
        cli.print({ ...r, ok: true, ...(chain ? { logChain: chain } : {}) }, () =>
          [`backup ${r.backupId}: all ${r.members} members verified, ${bytes(r.bytes)} read, every digest matches`, ...(chain ? chainLines(chain) : [])].join('\n'),
        );
        return;
      }
      if (r.damaged.length === 0) {
        if (cli.opts.json) process.stdout.write(`${JSON.stringify({ ...r, ok: false, logChain: chain }, null, 2)}\n`);
        else process.stdout.write(`backup ${r.backupId}: all ${r.members} members verified, ${bytes(r.bytes)} read, every digest matches\n`);
        for (const g of gaps) process.stderr.write(`ebr: gap: ${gapText(g)}\n`);
        const g = gaps[0]!;
        const err = new EbrError('logArchive', `the ${chain!.kind} log archive of ${instance.name} has ${gaps.length} gap(s); the first: ${gapText(g)}`, {
          hint: `restores of ${g.backups.join(', ')} cannot roll forward past ${g.after ?? 'the gap'}; put the missing log back from a copy if there is one, else take a new backup so that --until starts after the gap`,
          context: { instance: instance.name, member: g.missing },
        });
        if (cli.opts.json) {
          process.stderr.write(`ebr: error: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
      if (cli.opts.json) process.stdout.write(`${JSON.stringify({ ...r, ok: false, ...(chain ? { logChain: chain } : {}) }, null, 2)}\n`);
      else for (const d of r.damaged) process.stderr.write(`ebr: damaged: space ${d.space}, member ${d.member}: ${d.problem}\n`);
      const first = r.damaged[0]!;
      const err = new EbrError('digestMismatch', `backup ${r.backupId} is damaged: ${r.damaged.length} member(s), first in space ${first.space}, member ${first.member}`, {
        hint: 'do not restore from this backup; take a new backup, and check the storage that holds the archive',
        context: { instance: r.instance, backupId: r.backupId, space: first.space, member: first.member },
      });
      if (cli.opts.json) {
        process.stderr.write(`ebr: error: ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw err;
    });
}

function gapText(g: LogGap): string {
  return `${g.stream}: ${g.missing}${g.count > 1 ? ` and the ${g.count - 1} after it` : ''} missing${g.after ? ` after ${g.after}` : ''}${g.before ? `, before ${g.before}` : ''} (needed by backup${g.backups.length > 1 ? 's' : ''} ${g.backups.join(', ')})`;
}

function chainLines(c: LogChainReport & { kind: string }): string[] {
  return [
    `log archive (${c.kind}): ${c.streams.length ? c.streams.map((s) => `${s.stream} ${s.first} … ${s.last} (${s.count})`).join('; ') : 'empty'}; no gap where a retained backup needs its logs`,
    ...c.notes.map((n) => `  ${n}`),
  ];
}
