import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import { adapterOf, instanceContext } from '../../workflow/context.js';
import { cliOf } from '../context.js';

/**
 * `ebr release`: ends a block that outlived the ebr that took it (backup mode left on by a killed
 * process). The watchdog runs it at the deadline, and a DBA can run it by hand; it is safe when
 * nothing is blocked.
 */
export function register(program: Command): void {
  program
    .command('release')
    .description('end a block (backup mode, write suspend, a split replica) that a dead ebr left on the server; safe when nothing is blocked')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      const adapter = adapterOf(instance);
      if (instance.mirror) {
        // A split mirror: the paused replica is what a dead ebr leaves behind.
        const r = await adapter.mirror!.endSplit(instanceContext(cli.config(), instance), instance.mirror, cli.signal);
        cli.print({ instance: instance.name, released: r === 'ended', replica: true }, () => (r === 'ended' ? `resumed the replica of ${instance.name} that a backup had split` : `the replica of ${instance.name} was not split`));
        return;
      }
      if (!adapter.endBlock) {
        throw new EbrError('usage', `the ${instance.adapter} adapter's block ends with its session: there is nothing to release on ${instance.name}`, {
          hint: 'a block of this DBMS ends when the ebr process that took it dies',
          context: { instance: instance.name },
        });
      }
      const r = await adapter.endBlock(instanceContext(cli.config(), instance), cli.signal);
      cli.print({ instance: instance.name, released: r === 'ended' }, () => (r === 'ended' ? `ended the block left on ${instance.name}` : `nothing was blocked on ${instance.name}`));
    });
}
