/**
 * The writer fixture's status file is replaced whole, never rewritten in place: a test polling it
 * (consistency.test.ts) must never read half a status. Checked without timing luck: a reader that
 * opened the file before a report still reads that whole earlier status after it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, tempDir, waitFor } from '../helpers/env.js';
import { readStatusFile } from '../helpers/status-file.js';
import { makeInstance } from './sqlite-instance.js';

const writerScript = path.join(repoRoot, 'test/fixtures/sqlite-writer.mjs');

function readWhole(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.toString('utf8', 0, n);
}

describe('the sqlite writer fixture', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('renames each status in whole: a reader holding the file keeps the status it opened', async () => {
    const inst = makeInstance(t.dir);
    const statusFile = path.join(t.dir, 'writer.json');
    const proc = spawn(process.execPath, [writerScript, inst.main, inst.side, statusFile], { stdio: 'inherit' });
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await waitFor('the first report', () => (existsSync(statusFile) ? true : undefined));
      const fd = openSync(statusFile, 'r');
      try {
        const opened = readWhole(fd);
        const first = JSON.parse(opened) as { seq: number };
        await waitFor('a later report', () => ((readStatusFile<{ seq: number }>(statusFile)?.seq ?? 0) > first.seq ? true : undefined));
        // Rewritten in place, the file this reader holds would now say something else (or be empty).
        expect(readWhole(fd)).toBe(opened);
      } finally {
        closeSync(fd);
      }
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
    expect(existsSync(`${statusFile}.tmp`)).toBe(false);
  });

  it('a status file that does not parse is reported as the writer\'s bug, not taken for "not yet"', () => {
    const f = path.join(t.dir, 'half.json');
    expect(readStatusFile(path.join(t.dir, 'none.json'))).toBeUndefined();
    writeFileSync(f, '{"seq": 12');
    expect(() => readStatusFile(f)).toThrow(/half\.json holds a partial status .*write it aside and rename it in/);
  });
});
