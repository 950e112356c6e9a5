/**
 * One vitest case per moment at which a restore of a SQLite instance kills itself (EBR_FAULT_KILL_AT):
 * after the next ebr command the files are exactly as they were before it or exactly the backup,
 * integrity_check says ok, no `.ebr-*` entry is left beside them, and the restore's row says which.
 */
import { expect, it } from 'vitest';
import { runEbr } from '../helpers/env.js';
import { ebrLeftovers, sha256File } from '../helpers/files.js';
import { integrity } from './sqlite-instance.js';

export interface KillMoment {
  at: string;
  expect: 'before' | 'backup';
}

export function restoreKilledAt(moments: KillMoment[], o: {
  /** The restore's arguments after `restore` (`--delta`…). */
  args: string[];
  config: () => string;
  dir: () => string;
  files: () => string[];
  /** Puts the files back as they were before the restore. */
  putBack: () => void;
  before: () => string[];
  backup: () => string[];
}): void {
  const state = () => o.files().map(sha256File);
  for (const m of moments) {
    it(`killed at ${m.at}: the next command leaves ${m.expect === 'before' ? 'the files as they were' : 'the whole backup'}`, async () => {
      o.putBack();
      expect(state()).toEqual(o.before());
      const r = await runEbr(['--config', o.config(), 'restore', ...o.args, '--quiet'], { env: { EBR_FAULT_KILL_AT: m.at }, timeoutMs: 300_000 });
      // Killed by its own SIGKILL at that point: not an exit of its own.
      expect(r.code, `${r.stderr}`).not.toBe(0);
      expect(r.stderr).not.toMatch(/restored every space/);

      const next = await runEbr(['--config', o.config(), 'restores', '--json']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(m.expect === 'before' ? /every old file was put back as it was/ : /the restore is complete/);
      const rows = JSON.parse(next.stdout) as Array<{ status: string; outcome: string }>;
      expect(rows[0]!.status).toBe(m.expect === 'before' ? 'rolled-back' : 'complete');
      expect(rows.some((x) => x.status === 'running')).toBe(false);

      expect(state()).toEqual(m.expect === 'before' ? o.before() : o.backup());
      for (const f of o.files()) expect(integrity(f)).toBe('ok');
      expect(ebrLeftovers(o.dir())).toEqual([]);
    });
  }
}
