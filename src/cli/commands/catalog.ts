import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Catalog, isPostgresUrl, localStateDir, migrateCatalog } from '../../catalog/catalog.js';
import { copyCatalog } from '../../catalog/copy.js';
import { rebuildCatalog } from '../../catalog/rebuild.js';
import { EbrError } from '../../errors.js';
import { cliOf, type Cli } from '../context.js';
import { table } from '../format.js';

export function register(program: Command): void {
  const catalog = program.command('catalog').description('the catalog itself: its schema, a copy into another database, a rebuild from the archives');
  catalog
    .command('migrate')
    .description('bring the catalog to the schema this ebr knows and report its version (a catalog newer than this ebr is refused)')
    .action((_opts: unknown, cmd: Command) => {
      const cli = cliOf(cmd);
      const config = cli.config();
      const cat = Catalog.open(config.catalog, { localDir: localStateDir(config), migrate: false });
      try {
        const r = { catalog: cat.name, kind: cat.db.kind, ...migrateCatalog(cat) };
        cli.print(r, () =>
          r.from === r.to
            ? `catalog ${r.catalog} (${r.kind}): schema version ${r.to}, the newest this ebr knows`
            : `catalog ${r.catalog} (${r.kind}): migrated from schema version ${r.from} to ${r.to}`,
        );
      } finally {
        cat.close();
      }
    });
  catalog
    .command('copy')
    .description('copy every row of the catalog into another, empty one (a SQLite file or postgres://…) and check both hold the same backups, members and digests')
    .requiredOption('--to <catalog>', 'the destination: a SQLite file, or postgres://user@host:port/db (password from ${ENV} in the URL, PGPASSWORD or ~/.pgpass)')
    .action((opts: { to: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      const config = cli.config();
      const to = isPostgresUrl(opts.to) ? opts.to : path.resolve(opts.to);
      if (to === config.catalog) throw new EbrError('usage', `--to ${opts.to} is the catalog itself`, { hint: 'name another SQLite file or PostgreSQL database' });
      const from = Catalog.open(config.catalog, { localDir: localStateDir(config) });
      try {
        const dest = Catalog.open(to, { localDir: localStateDir(config) });
        try {
          const r = copyCatalog(from, dest);
          cli.print(r, () =>
            [
              `copied catalog ${r.from} into ${r.to}:`,
              ...Object.entries(r.rows).map(([t, n]) => `  ${t}: ${n} rows`),
              `both hold the same backups, members and digests (sha256 ${r.digest.slice(0, 16)}…)`,
              `to use it, set catalog: ${r.to} in the config`,
            ].join('\n'),
          );
        } finally {
          dest.close();
        }
      } finally {
        from.close();
      }
    });
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
    if (err instanceof EbrError && !isPostgresUrl(file) && existsSync(file) && err.message.startsWith(`cannot open the catalog ${file}`)) {
      throw new EbrError('config', err.message, {
        hint: `move the damaged file and its -wal and -shm files aside (mv ${file} ${file}.damaged; likewise ${file}-wal and ${file}-shm) and run \`ebr catalog rebuild\` again: it makes a new catalog from the archives`,
        context: { path: file },
        cause: err,
      });
    }
    throw err;
  }
}
