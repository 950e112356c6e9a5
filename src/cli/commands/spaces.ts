import type { Command } from 'commander';
import { discoverInstance } from '../../workflow/discover.js';
import { cliOf } from '../context.js';
import { bytes, table } from '../format.js';

export function register(program: Command): void {
  program
    .command('spaces')
    .description('discover and print the spaces and chunks a backup would take')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('--chunks', 'list every chunk, not only the spaces')
    .action(async (opts: { instance?: string; chunks?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const instance = cli.instance(opts.instance);
      await cli.catalog();
      const d = await discoverInstance(cli.config(), instance, cli.signal);
      const size = (s: (typeof d.spaces)[number]) => s.chunks.reduce((a, c) => a + c.size, 0);
      cli.print(d, () =>
        [
          `instance ${d.instance} (${d.vendor}); snapshot provider ${d.snapshotProvider} can freeze all chunks`,
          `volumes: ${d.volumes.map((v) => `${v.mountPoint} (${v.fsType})`).join(', ')}`,
          '',
          table(
            ['SPACE', 'KIND', 'CRITICAL', 'CHUNKS', 'SIZE', 'NOTES'],
            d.spaces.map((s) => [s.name, s.kind, s.critical ? 'yes' : '', s.chunks.length, bytes(size(s)), (s.notes ?? []).join('; ')]),
          ),
          ...(opts.chunks
            ? ['', table(['SPACE', 'CHUNK', 'TYPE', 'SIZE', 'PATH'], d.spaces.flatMap((s) => s.chunks.map((c) => [s.name, c.name, c.type, bytes(c.size), c.path])))]
            : []),
        ].join('\n'),
      );
    });
}
