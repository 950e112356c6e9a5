/**
 * The catalog's state changes survive power loss: complete, failed, died and removed (and the journal
 * entry of an archive) are committed with the WAL fsynced; phase journaling, which runs inside the
 * window, is not. Checked on the real catalog through strace: which fsync/fdatasync of catalog.db-wal
 * happens between which steps of a scripted backup lifecycle.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, tempDir } from '../helpers/env.js';

const script = path.join(repoRoot, 'test/faults/catalog-transitions.mjs');

function strace(): string {
  for (const p of ['/usr/bin/strace', '/bin/strace']) if (existsSync(p)) return p;
  throw new Error('strace is not installed: apt-get install -y strace (the durability test traces the catalog fsyncs with it)');
}

/** fsync/fdatasync calls on the catalog's WAL between each MARK and the next. */
function walSyncsPerStep(trace: string): Array<{ step: string; syncs: number }> {
  const steps: Array<{ step: string; syncs: number }> = [];
  for (const line of trace.split('\n')) {
    const mark = /write\(2<[^>]*>, "MARK ([\w-]+)\\n"/.exec(line);
    if (mark) steps.push({ step: mark[1]!, syncs: 0 });
    else if (/\b(fsync|fdatasync)\(\d+<[^>]*catalog\.db-wal>\)/.test(line) && steps.length) steps.at(-1)!.syncs++;
  }
  return steps;
}

describe('catalog durability', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('fsyncs the WAL for complete, failed, died, removed and a journaled archive, and not for phases', () => {
    const out = path.join(t.dir, 'trace');
    const stdout = execFileSync(strace(), ['-f', '-qq', '-y', '-e', 'trace=write,fsync,fdatasync', '-o', out, process.execPath, script, path.join(repoRoot, 'dist'), path.join(t.dir, 'catalog.db')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    expect(JSON.parse(stdout)).toEqual({ died: ['20260101T000000Z-0003'] });
    const steps = walSyncsPerStep(readFileSync(out, 'utf8'));
    const of = (step: string) => steps.filter((s) => s.step === step).map((s) => s.syncs);
    expect(steps.map((s) => s.step)).toEqual(['begin', 'phases', 'journal-archive', 'complete', 'begin', 'failed', 'removed', 'begin', 'died', 'end']);
    // Journaling phases inside the window costs no fsync.
    expect(of('phases')).toEqual([0]);
    for (const step of ['journal-archive', 'complete', 'failed', 'removed', 'died']) expect(of(step)[0], step).toBeGreaterThanOrEqual(1);
    console.log(`WAL fsyncs per step: ${steps.map((s) => `${s.step} ${s.syncs}`).join(', ')}`);
  });
});
