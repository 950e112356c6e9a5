/**
 * A restore whose process died is finished or undone by the next ebr command, whichever it is. If
 * the adapter's finish step had succeeded (step `cleanup`), every new file is verified and in place:
 * the old files set aside are removed and the restore is complete. Otherwise every journaled step is
 * undone newest first, so the old files are back exactly as they were, and the restore is rolled back.
 */
import type { Catalog } from '../catalog/catalog.js';
import { abandonedRestores, finishRestore, journalOf } from '../catalog/restores.js';
import { commitJournal, undoJournal } from './restore-undo.js';

export interface RecoveredRestore {
  restoreId: number;
  backupId: string;
  instance: string | null;
  step: string | null;
  outcome: 'completed' | 'rolled back' | 'needs attention';
  message: string;
}

export async function recoverRestores(cat: Catalog): Promise<RecoveredRestore[]> {
  const out: RecoveredRestore[] = [];
  for (const r of abandonedRestores(cat)) {
    const rows = journalOf(cat, r.id);
    const what = `restore ${r.id} of backup ${r.backup_id}${r.instance ? ` (${r.instance})` : ''}${r.target_dir ? ` into ${r.target_dir}` : ''}`;
    const died = `its process (pid ${r.runner_pid ?? '?'}) died in step ${r.step ?? 'check'}`;
    if (r.step === 'cleanup' || r.step === 'done') {
      const kept = await commitJournal(rows);
      const message = `${what}: ${died}, after every file was verified and in place; the old files were removed and the restore is complete${kept.length ? ` (kept: ${kept.join(', ')})` : ''}`;
      finishRestore(cat, r.id, 'complete', { outcome: `completed by the next command: ${died}` });
      out.push({ restoreId: r.id, backupId: r.backup_id, instance: r.instance, step: r.step, outcome: 'completed', message });
      continue;
    }
    const problems = await undoJournal(rows);
    if (problems.length) {
      const message = `${what}: ${died}; undoing it left ${problems.length} problem(s): ${problems.slice(0, 3).join('; ')}`;
      finishRestore(cat, r.id, 'failed', { outcome: message });
      out.push({ restoreId: r.id, backupId: r.backup_id, instance: r.instance, step: r.step, outcome: 'needs attention', message });
      continue;
    }
    const message = `${what}: ${died}; every old file was put back as it was (${rows.length} journaled step(s) undone)`;
    finishRestore(cat, r.id, 'rolled-back', { outcome: `rolled back by the next command: ${died}` });
    out.push({ restoreId: r.id, backupId: r.backup_id, instance: r.instance, step: r.step, outcome: 'rolled back', message });
  }
  return out;
}
