/**
 * The embedded example, end to end on SQLite: make an instance, back it up, damage one attached
 * database, restore only that space, and show that the data is back.
 */
import { existsSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync, closeSync, fstatSync } from 'node:fs';
import path from 'node:path';
import { Catalog } from '../src/catalog/catalog.js';
import { loadConfig, pickInstance } from '../src/config/load.js';
import { EbrError } from '../src/errors.js';
import { runBackup, type BackupResult } from '../src/workflow/backup.js';
import type { ProgressListener } from '../src/workflow/progress.js';
import { runRestore, type RestoreResult } from '../src/workflow/restore.js';
import { runVerify, type VerifyResult } from '../src/workflow/verify.js';
import { createSampleInstance, integrityOf, inventoryFingerprint } from './sample-instance.js';

export interface DemoResult {
  dir: string;
  config: string;
  backup: BackupResult;
  verify: VerifyResult;
  damage: { file: string; bytes: number; integrityAfterDamage: string };
  restore: RestoreResult;
  before: ReturnType<typeof inventoryFingerprint>;
  after: ReturnType<typeof inventoryFingerprint>;
  integrityAfterRestore: string;
  dataIsBack: boolean;
}

const marker = '.ebr-demo';

export async function runDemo(o: { dir: string; signal: AbortSignal; onProgress?: ProgressListener; say?: (line: string) => void }): Promise<DemoResult> {
  const say = o.say ?? (() => undefined);
  const dir = path.resolve(o.dir);
  prepareDir(dir);
  const dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const files = createSampleInstance(dataDir);
  const configFile = path.join(dir, 'ebr.yaml');
  writeFileSync(
    configFile,
    `# written by \`ebr demo\`: a SQLite shop with two attached databases
catalog: ./var/catalog.db
instances:
  shop:
    adapter: sqlite
    sqlite:
      main: ./data/shop.db
      attach: { audit: ./data/audit.db, inventory: ./data/inventory.db }
    snapshot: { provider: copy, staging: ./var/staging }
    target: { type: tar, path: ./var/backups }
    maxBlockMs: 10000
`,
  );
  say(`created a sample SQLite instance in ${dataDir} and its config ${configFile}`);
  const config = loadConfig(configFile);
  const instance = pickInstance(config, 'shop');
  using catalog = Catalog.open(config.catalog);
  const progress = o.onProgress ? { onProgress: o.onProgress } : {};

  say('$ ebr backup');
  const backup = await runBackup({ config, instance, catalog, signal: o.signal, ...progress });
  say('$ ebr verify latest');
  const verify = await runVerify({ catalog, instance, backupId: backup.backupId, signal: o.signal, ...progress });
  if (verify.damaged.length) throw new EbrError('digestMismatch', `the demo's fresh backup does not verify: ${verify.damaged[0]!.problem}`);

  const before = inventoryFingerprint(files.inventory);
  const damage = damageFile(files.inventory);
  const integrityAfterDamage = integrityOf(files.inventory);
  say(`damaged ${files.inventory}: overwrote ${damage} bytes; integrity_check now says: ${integrityAfterDamage}`);

  say('$ ebr restore --partial inventory');
  const restore = await runRestore({ config, instance, catalog, backupId: backup.backupId, partial: ['inventory'], signal: o.signal, ...progress });
  const after = inventoryFingerprint(files.inventory);
  const integrityAfterRestore = integrityOf(files.inventory);
  const dataIsBack = integrityAfterRestore === 'ok' && JSON.stringify(before) === JSON.stringify(after);
  return {
    dir,
    config: configFile,
    backup,
    verify,
    damage: { file: files.inventory, bytes: damage, integrityAfterDamage },
    restore,
    before,
    after,
    integrityAfterRestore,
    dataIsBack,
  };
}

/** The demo only ever deletes a directory it made itself (it carries a marker file). */
function prepareDir(dir: string): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(marker)) {
      throw new EbrError('usage', `${dir} exists and was not made by ebr demo; the demo will not touch it`, { hint: 'pass --dir with a new or empty directory' });
    }
    rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, marker), 'made by ebr demo; safe to delete\n');
}

/** Overwrites pages in the middle of the file with garbage, as a bad disk or a stray write would. */
function damageFile(file: string): number {
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    const garbage = Buffer.alloc(Math.min(16384, Math.floor(size / 2)), 0xa5);
    writeSync(fd, garbage, 0, garbage.length, 4096);
    return garbage.length;
  } finally {
    closeSync(fd);
  }
}
