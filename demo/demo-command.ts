/** `ebr demo`: the embedded example on SQLite, registered with the CLI's commands. */
import type { Command } from 'commander';
import { EbrError } from '../src/errors.js';
import { cliOf } from '../src/cli/context.js';
import { bytes, ms, table } from '../src/cli/format.js';
import { ebrCommandIn, shellQuote } from '../src/cli/invocation.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('the embedded example, end to end on SQLite: back up, damage one space, restore it, prove the data is back')
    .option('--dir <dir>', 'where the demo instance, config, catalog and archive go', 'ebr-demo')
    .action(async (opts: { dir: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const bar = cli.progress();
      // The demo (and SQLite's driver) loads only when it runs.
      const { runDemo } = await import('./demo.js');
      const r = await runDemo({ dir: opts.dir, signal: cli.signal, say: (l) => cli.note(l), ...(bar.listener ? { onProgress: bar.listener } : {}) }).finally(() => bar.stop());
      // After `npm ci` no `ebr` is on the PATH: name the command that works in the demo's directory.
      const ebr = ebrCommandIn(r.dir);
      const tryIt = `cd ${shellQuote(r.dir)} && ${ebr} list && ${ebr} show latest && ${ebr} verify`;
      cli.print({ ...r, tryIt }, () =>
        [
          '',
          `ebr demo: SQLite instance "shop" in ${r.dir}`,
          '',
          `backup ${r.backup.backupId}: ${r.backup.spaces} spaces, ${r.backup.chunks} chunks, ${bytes(r.backup.bytes)}`,
          `  block window ${ms(r.backup.blockWindowMs)} (${Object.entries(r.backup.windowSteps).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})`,
          `  archive ${r.backup.location}`,
          `verify: ${r.verify.members} members, ${bytes(r.verify.bytes)}, every sha256 matches`,
          `damage: ${bytes(r.damage.bytes)} overwritten in ${r.damage.file}`,
          `  integrity_check said: ${r.damage.integrityAfterDamage}`,
          `restore --partial inventory: ${r.restore.files} file(s), ${bytes(r.restore.bytes)}, digests checked before the swap`,
          '',
          table(
            ['inventory', 'rows', 'sum(stock)', 'checksum', 'integrity_check'],
            [
              ['at backup', r.before.rows, r.before.stock, r.before.checksum, 'ok'],
              ['after restore', r.after.rows, r.after.stock, r.after.checksum, r.integrityAfterRestore],
            ],
          ),
          '',
          r.dataIsBack ? 'the data is back: every row of the inventory matches the backup.' : 'THE DATA IS NOT BACK: the restored inventory differs from the backup.',
          `try it yourself: ${tryIt}`,
        ].join('\n'),
      );
      if (!r.dataIsBack) throw new EbrError('restore', 'the demo restore did not bring the data back', { hint: 'this is a bug; please report it with the output above' });
    });
}
