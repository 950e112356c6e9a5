/** The hand-written tar writer and reader against GNU tar: long names, symlinks, directories, pax sizes. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tarTarget } from '../../src/archive/tar-target.js';
import { readFileChunks } from '../../src/archive/digest-copy.js';
import { tempDir } from '../helpers/env.js';

describe('tar target', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const longName = `${'deep/'.repeat(30)}file-with-a-long-name.dat`;

  it('writes archives GNU tar extracts byte for byte, and reads back what GNU tar writes', async () => {
    const src = path.join(t.dir, 'src');
    mkdirSync(src);
    const a = path.join(src, 'a.bin');
    writeFileSync(a, Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    const b = path.join(src, 'b.txt');
    writeFileSync(b, 'hello\n');
    const target = tarTarget({ path: path.join(t.dir, 'archive') });
    const w = await target.create({ instance: 'i', backupId: 'x1' });
    const s = await w.openSpace('sp');
    const signal = new AbortController().signal;
    const ra = await s.addFile({ name: 'a.bin', type: 'file', size: 3 * 1024 * 1024 + 17, mode: 0o600 }, readFileChunks(a), signal);
    await s.addFile({ name: longName, type: 'file', size: 6, mode: 0o644 }, readFileChunks(b), signal);
    await s.addEntry({ name: 'pg_wal', type: 'directory', size: 0, mode: 0o700 });
    await s.addEntry({ name: 'pg_tblspc/16385', type: 'symlink', size: 0, linkTarget: `/very/${'long/'.repeat(30)}target` });
    await s.close();
    expect(ra.sha256).toBe(execFileSync('sha256sum', [a]).toString().split(' ')[0]);

    const out = path.join(t.dir, 'out');
    mkdirSync(out);
    const tarFile = path.join(w.location, 'spaces/sp.tar');
    execFileSync('tar', ['-xf', tarFile, '-C', out]);
    expect(readFileSync(path.join(out, 'a.bin')).equals(readFileSync(a))).toBe(true);
    expect(readFileSync(path.join(out, longName), 'utf8')).toBe('hello\n');
    const listing = execFileSync('tar', ['-tvf', tarFile]).toString();
    expect(listing).toMatch(/^drwx------ .* pg_wal\/$/m);
    expect(listing).toContain(`pg_tblspc/16385 -> /very/${'long/'.repeat(30)}target`);

    // And our reader walks an archive GNU tar made (pax format, long names, symlinks).
    const gnu = path.join(t.dir, 'archive/i/x2');
    mkdirSync(path.join(gnu, 'spaces'), { recursive: true });
    mkdirSync(path.join(src, path.dirname(longName)), { recursive: true });
    writeFileSync(path.join(src, longName), 'long\n');
    symlinkSync('b.txt', path.join(src, 'link'));
    execFileSync('tar', ['--format=pax', '-cf', path.join(gnu, 'spaces/sp.tar'), '-C', src, 'a.bin', 'link', longName]);
    const r = await target.open({ instance: 'i', backupId: 'x2' });
    const seen: string[] = [];
    for await (const m of r.readSpace('sp', signal)) {
      let n = 0;
      for await (const buf of m.body) n += buf.length;
      seen.push(`${m.header.type}:${m.header.name}:${n}${m.header.linkTarget ? `->${m.header.linkTarget}` : ''}`);
    }
    expect(seen).toEqual([`file:a.bin:${3 * 1024 * 1024 + 17}`, 'symlink:link:0->b.txt', `file:${longName}:5`]);
  });

  it('never overwrites an existing backup', async () => {
    const target = tarTarget({ path: path.join(t.dir, 'archive') });
    await expect(target.create({ instance: 'i', backupId: 'x1' })).rejects.toThrow(/never overwrites a backup/);
  });

  it('refuses a member whose source is not the size the header promised', async () => {
    const f = path.join(t.dir, 'grow.bin');
    writeFileSync(f, Buffer.alloc(1000));
    const w = await tarTarget({ path: path.join(t.dir, 'archive') }).create({ instance: 'i', backupId: 'x3' });
    const s = await w.openSpace('sp');
    await expect(s.addFile({ name: 'grow.bin', type: 'file', size: 500 }, readFileChunks(f), new AbortController().signal)).rejects.toThrow(/grew while it was read/);
    await w.abort();
  });
});
