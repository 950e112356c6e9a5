/**
 * Restoring SQLite files: only when no process holds them, with the old -wal, -shm and -journal moved
 * aside together with the old file (a stale WAL replayed onto a restored file would corrupt it), and
 * `PRAGMA integrity_check` on every restored database afterwards.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ArchivedChunk, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { noteStep, sqlStep } from '../../src/plan.js';
import { processesHolding } from '../../src/util/open-files.js';

export function sqliteRestorer(plan: RestorePlan): Restorer {
  const written = plan.spaces.filter((s) => plan.requested.includes(s.name));
  const chunks = written.flatMap((s) => s.chunks);
  const destinationOf = (c: ArchivedChunk) => (plan.targetDir ? path.join(plan.targetDir, path.basename(c.path)) : c.path);
  const sideFilesOf = (dest: string) => (dest.endsWith('-wal') ? [] : [`${dest}-wal`, `${dest}-shm`, `${dest}-journal`]);

  return {
    async plan() {
      return [
        noteStep('check', `no process may hold ${chunks.map(destinationOf).join(', ')} or their -wal, -shm, -journal files open`),
        ...written.map((sp) => sqlStep('finish', `PRAGMA integrity_check -- on ${sp.name}`)),
      ];
    },

    async check() {
      const seen = new Map<string, string>();
      for (const c of chunks) {
        const dest = destinationOf(c);
        const other = seen.get(dest);
        if (other) {
          throw new EbrError('usage', `two chunks would be restored to ${dest}: ${other} and ${c.name}`, {
            hint: 'restore these spaces one at a time, or into their own paths',
          });
        }
        seen.set(dest, c.name);
      }
      const files = [...seen.keys()].flatMap((d) => [d, ...sideFilesOf(d)]);
      const holders = processesHolding(files);
      if (holders.length > 0) {
        const list = holders.slice(0, 5).map((h) => `pid ${h.pid} (${h.command}) has ${h.path} open`).join('; ');
        throw new EbrError('inUse', `the database is in use: ${list}`, {
          hint: 'stop the programs that use it before restoring over it, or restore with --to DIR',
          context: { instance: plan.instance, path: holders[0]!.path },
        });
      }
    },
    destinationOf,
    sideFilesOf,
    async finish() {
      const notes: string[] = [];
      const results: Record<string, string> = {};
      for (const s of written) {
        const file = s.chunks.find((c) => c.details?.role === 'database' || !c.name.endsWith('-wal'));
        if (!file) continue;
        const dest = destinationOf(file);
        const db = new Database(dest, { fileMustExist: true });
        try {
          const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
          const verdict = rows.map((r) => r.integrity_check).join('; ');
          results[s.name] = verdict;
          if (verdict !== 'ok') {
            throw new EbrError('restore', `integrity_check of restored space ${s.name} (${dest}) says: ${verdict}`, {
              hint: 'the archive was verified, so the backup itself holds a damaged database; try an older backup',
              context: { space: s.name, path: dest },
            });
          }
          notes.push(`${s.name}: ${dest} integrity_check ok`);
        } finally {
          db.close();
        }
      }
      return { notes, details: { integrityCheck: results } };
    },
  };
}
