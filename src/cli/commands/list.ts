import type { Command } from 'commander';
import { listBackups, type BackupRow } from '../../catalog/backups.js';
import { lastPassedDrills } from '../../catalog/drills.js';
import { cliOf } from '../context.js';
import { bytes, ms, table } from '../format.js';

export function register(program: Command): void {
  program
    .command('list')
    .description('list the backups in the catalog, newest first')
    .option('-i, --instance <name>', 'only this instance')
    .action(async (opts: { instance?: string }, cmd: Command) => {
      const cli = cliOf(cmd);
      if (opts.instance) cli.instance(opts.instance);
      const catalog = await cli.catalog();
      const rows = listBackups(catalog, opts.instance);
      // When each backup was last proven restorable by `ebr drill`.
      const drilled = lastPassedDrills(catalog, opts.instance);
      cli.print(
        rows.map((b) => ({ id: b.id, instance: b.instance, vendor: b.vendor, status: statusOf(b), removedAt: b.removed_at, rebuiltAt: b.rebuilt_at, phase: b.phase, startedAt: b.started_at, finishedAt: b.finished_at, blockWindowMs: b.block_window_ms, type: b.type ?? 'full', parent: b.parent_id, bytes: b.bytes, storedBytes: b.stored_bytes, members: b.members, lastDrillAt: drilled.get(b.id) ?? null, error: b.error ? JSON.parse(b.error) : null })),
        () =>
          rows.length === 0
            ? 'no backups in the catalog yet; run `ebr backup`'
            : table(
                ['ID', 'INSTANCE', 'TYPE', 'STATUS', 'STARTED', 'WINDOW', 'SIZE', 'STORED', 'DRILLED', 'NOTE'],
                rows.map((b) => [b.id, b.instance, b.type ?? 'full', statusOf(b), b.started_at.replace('T', ' ').slice(0, 19), ms(b.block_window_ms), bytes(b.bytes), b.stored_bytes === null ? '-' : bytes(b.stored_bytes), drilled.get(b.id)?.replace('T', ' ').slice(0, 16) ?? '-', noteOf(b)]),
              ),
      );
    });
}

/** Why a backup failed; or that its row was made from its archive by `ebr catalog rebuild`. */
function noteOf(b: BackupRow): string {
  if (b.status === 'failed') return `${b.phase}: ${(JSON.parse(b.error ?? '{}') as { message?: string }).message ?? ''}`.slice(0, 80);
  return [b.parent_id ? `blocks of ${b.parent_id}` : '', b.rebuilt_at ? '(rebuilt from archive)' : ''].filter(Boolean).join(' ');
}

/** A complete backup whose archive retention removed is shown as removed. */
function statusOf(b: BackupRow): string {
  return b.removed_at ? 'removed' : b.status;
}
