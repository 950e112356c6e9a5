import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Catalog } from '../../catalog/catalog.js';
import { rebuildCatalog } from '../../catalog/rebuild.js';
import { EbrError } from '../../errors.js';
import { cliOf, type Cli } from '../context.js';
import { table } from '../format.js';

export function register(program: Command): void {
  const catalog = program.command('catalog').description('the catalog itself: rebuild it from the archives');
  catalog
    .command('rebuild')
    .description("record every backup the archives hold and the catalog lacks, from their manifests (for a lost or damaged catalog)")
    .option('-i, --instance <name>', 'only this instance (default: every instance in the config)')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const config = cli.config();
      const instances = opts.instance ? [cli.instance(opts.instance)] : Object.values(config.instances);
      const cat = await openForRebuild(cli, config.catalog);
      const r = await rebuildCatalog({ config, catalog: cat, instances, signal: cli.signal });
      cli.print(r, () => {
        const rows = [
          ...r.added.map((b) => ['added', b.instance, b.backupId, b.location]),
          ...r.present.map((b) => ['present', b.instance, b.backupId, 'already in the catalog; left as it was']),
          ...r.skipped.map((s) => ['skipped', s.instance, s.backupId ?? '-', `${s.path}: ${s.reason}`]),
        ];
        return [
          `catalog ${r.catalog}, from the archives of ${instances.map((i) => i.name).join(', ')}`,
          ...(rows.length ? ['', table(['', 'INSTANCE', 'BACKUP', 'WHERE'], rows)] : ['no archives found']),
          '',
          `${r.added.length} added (marked "rebuilt from archive"), ${r.present.length} already present, ${r.skipped.length} skipped`,
          ...(r.added.length ? ['the archives\' data was not read: `ebr verify <backup-id>` checks every digest of one'] : []),
        ].join('\n');
      });
    });
}

/** A catalog file that cannot be opened is not removed by ebr: the user moves it aside, and rebuild makes a new one. */
async function openForRebuild(cli: Cli, file: string): Promise<Catalog> {
  try {
    return await cli.catalog();
  } catch (err) {
    if (err instanceof EbrError && existsSync(file) && err.message.startsWith(`cannot open the catalog ${file}`)) {
      throw new EbrError('config', err.message, {
        hint: `move the damaged file and its -wal and -shm files aside (mv ${file} ${file}.damaged; likewise ${file}-wal and ${file}-shm) and run \`ebr catalog rebuild\` again: it makes a new catalog from the archives`,
        context: { path: file },
        cause: err,
      });
    }
    throw err;
  }
}
