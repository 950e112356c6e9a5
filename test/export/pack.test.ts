/**
 * The export's writer, below the CLI: directories and symlinks keep their kind and mode; a member whose
 * source fails at its very end, or a signal, leaves neither the output nor the temporary file; and a
 * member far larger than memory could hold whole streams through archiver in constant memory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAtomically, type ExportFormat } from '../../src/workflow/export.js';
import { tempDir } from '../helpers/env.js';

const t = tempDir('ebr-export-pack-');
afterAll(() => t.cleanup());
const date = new Date('2026-03-01T12:00:00Z');

function unpack(file: string, format: ExportFormat, into: string): void {
  mkdirSync(into, { recursive: true });
  if (format === 'zip') execFileSync('unzip', ['-q', file, '-d', into]);
  else execFileSync('tar', ['-xzf', file, '-C', into]);
}

async function* bytes(...parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

describe('writeAtomically', () => {
  for (const format of ['zip', 'tgz'] as const) {
    it(`${format}: directories and symlinks are kept, with their modes`, async () => {
      const out = path.join(t.dir, `tree.${format}`);
      await writeAtomically(out, format, false, new AbortController().signal, {}, async (pack) => {
        await pack.directory('main/base', { mode: 0o700, date });
        await pack.file('main/base/1', bytes('one ', 'two'), 7, { mode: 0o600, date });
        await pack.symlink('main/pg_tblspc/16384', '../base', { mode: 0o777, date });
      });
      const into = path.join(t.dir, `tree-${format}`);
      unpack(out, format, into);
      expect(lstatSync(path.join(into, 'main/base')).isDirectory()).toBe(true);
      expect(lstatSync(path.join(into, 'main/base')).mode & 0o777).toBe(0o700);
      expect(readFileSync(path.join(into, 'main/base/1'), 'utf8')).toBe('one two');
      expect(lstatSync(path.join(into, 'main/base/1')).mode & 0o777).toBe(0o600);
      expect(lstatSync(path.join(into, 'main/pg_tblspc/16384')).isSymbolicLink()).toBe(true);
      expect(readlinkSync(path.join(into, 'main/pg_tblspc/16384'))).toBe('../base');
    });

    it(`${format}: a member that fails at its end leaves no output and no temporary file`, async () => {
      const dir = path.join(t.dir, `fail-${format}`);
      mkdirSync(dir);
      const out = path.join(dir, `x.${format}`);
      async function* damagedAtEnd(): AsyncGenerator<Buffer> {
        yield Buffer.alloc(1 << 20, 1);
        yield Buffer.alloc(1 << 20, 2);
        throw new Error('digest mismatch at the end');
      }
      const run = writeAtomically(out, format, false, new AbortController().signal, {}, async (pack) => {
        await pack.buffer('manifest.json', Buffer.from('{}'), date);
        await pack.file('notes/notes.db', damagedAtEnd(), 2 << 20, { mode: 0o644, date });
        await pack.buffer('never.txt', Buffer.from('x'), date);
      });
      await expect(run).rejects.toThrow(/digest mismatch at the end/);
      expect(readdirSync(dir)).toEqual([]);
    });

    it(`${format}: a signal mid-member stops the export and removes the temporary file`, async () => {
      const dir = path.join(t.dir, `signal-${format}`);
      mkdirSync(dir);
      const out = path.join(dir, `x.${format}`);
      const ac = new AbortController();
      async function* endless(): AsyncGenerator<Buffer> {
        const b = Buffer.alloc(1 << 20, 7);
        for (let i = 0; ; i++) {
          if (i === 8) setImmediate(() => ac.abort(new Error('interrupted by SIGTERM')));
          yield b;
          await new Promise((r) => setImmediate(r));
        }
      }
      const run = writeAtomically(out, format, false, ac.signal, {}, (pack) => pack.file('main/big', endless(), 1 << 30, { mode: 0o644, date }));
      await expect(run).rejects.toMatchObject({ code: 'cancelled' });
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dir)).toEqual([]);
    });

    it(`${format}: a 256 MiB member streams through in constant memory`, async () => {
      const out = path.join(t.dir, `big.${format}`);
      const size = 256 << 20;
      // One buffer handed out again and again: whatever memory grows is what the writer holds.
      const block = Buffer.alloc(4 << 20);
      for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
      async function* source(): AsyncGenerator<Buffer> {
        for (let done = 0; done < size; done += block.length) yield block;
      }
      global.gc?.();
      const base = process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      try {
        await writeAtomically(out, format, false, new AbortController().signal, {}, (pack) => pack.file('main/big.db', source(), size, { mode: 0o644, date }));
      } finally {
        clearInterval(sampler);
      }
      expect((peak - base) / (1 << 20), 'MiB of memory grown while streaming').toBeLessThan(128);
      const listed = format === 'zip' ? execFileSync('unzip', ['-Z', '-l', out]).toString() : execFileSync('tar', ['-tvzf', out]).toString();
      expect(listed).toContain(String(size));
    }, 180_000);
  }
});
