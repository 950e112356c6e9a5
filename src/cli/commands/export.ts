import type { Command } from 'commander';
import { EbrError } from '../../errors.js';
import { exportFormatOf, exportFormats, runExport } from '../../workflow/export.js';
import { cliOf } from '../context.js';
import { bytes } from '../format.js';

export function register(program: Command): void {
  program
    .command('export')
    .description('pack the verified files of one backup into one zip or tgz file for another team or machine')
    .argument('<backup-id>', 'backup id, or latest')
    .option('-i, --instance <name>', 'instance from the config (optional when there is one)')
    .option('-p, --partial <space...>', 'only these spaces')
    .option('-f, --format <format>', `archive format: ${exportFormats.join(' or ')}`)
    .option('-o, --output <file>', 'the file to write; it appears only once every digest matched')
    .option('--force', 'replace an existing output file')
    .action(async (id: string, opts: { instance?: string; partial?: string[]; format?: string; output?: string; force?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd);
      const format = exportFormatOf(opts.format);
      if (!opts.output) throw new EbrError('usage', 'ebr export needs --output FILE', { hint: `say where the ${format} file goes, e.g. --output ${id}.${format}` });
      const instance = cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const r = await runExport({
        catalog,
        instance,
        backupId: id,
        format,
        output: opts.output,
        ...(opts.partial ? { partial: opts.partial } : {}),
        ...(opts.force ? { force: true } : {}),
        signal: cli.signal,
      });
      cli.print(r, () =>
        [
          `exported ${opts.partial ? `space ${r.spaces.join(', ')}` : 'every space'} of backup ${r.backupId} to ${r.output}`,
          `  ${r.format}, ${bytes(r.bytes)}: ${r.members} member(s), ${bytes(r.dataBytes)} of data, every digest checked on the way in; meta/ and manifest.json beside them`,
        ].join('\n'),
      );
    });
}
