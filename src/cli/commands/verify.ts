import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import { runVerify } from '../../workflow/verify.js';
import { cliOf } from '../context.js';
import { bytes } from '../format.js';

export function register(program: Command): void {
  program
    .command('verify')
    .description('re-read a backup\'s archive and check every digest (exit 1 when anything is damaged)')
    .argument('[backup-id]', 'backup id, or latest', 'latest')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (id: string, opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const bar = cli.progress();
      const r = await runVerify({ catalog, instance, backupId: id, signal: cli.signal, ...(bar.listener ? { onProgress: bar.listener } : {}) }).finally(() => bar.stop());
      if (r.damaged.length === 0) {
        cli.print({ ...r, ok: true }, () => `backup ${r.backupId}: all ${r.members} members verified, ${bytes(r.bytes)} read, every digest matches`);
        return;
      }
      if (cli.opts.json) process.stdout.write(`${JSON.stringify({ ...r, ok: false }, null, 2)}\n`);
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
