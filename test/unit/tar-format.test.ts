/** The hand-written tar writer and reader against GNU tar: long names, symlinks, directories, pax sizes, big owners and times. */
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tarTarget } from '../../src/archive/tar-target.js';
import { readFileChunks } from '../../src/archive/digest-copy.js';
import { block, decodeHeader, encodeHeader, padding } from '../../src/archive/tar-format.js';
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

  describe('numbers that ustar octal fields cannot hold', () => {
    // uid 3000000 needs 8 octal digits and gid 2^24+5 needs 9: the 8-byte fields hold 7 and a NUL.
    const uid = 3_000_000;
    const gid = 2 ** 24 + 5;
    // 2300-01-01 is past 8^11 seconds (2242), the most the 12-byte field holds; 1960 is before 1970.
    const future = Date.UTC(2300, 0, 1);
    const past = Date.UTC(1960, 5, 15, 12);

    it('GNU tar lists and extracts big uids, gids and times as written, and the reader reads them back', async () => {
      const src = path.join(t.dir, 'big-src');
      mkdirSync(src);
      writeFileSync(path.join(src, 'f'), 'owned\n');
      const target = tarTarget({ path: path.join(t.dir, 'big') });
      const w = await target.create({ instance: 'i', backupId: 'b1' });
      const s = await w.openSpace('sp');
      const signal = new AbortController().signal;
      await s.addFile({ name: 'f', type: 'file', size: 6, mode: 0o640, uid, gid, mtimeMs: future }, readFileChunks(path.join(src, 'f')), signal);
      await s.addFile({ name: 'old', type: 'file', size: 6, mode: 0o600, uid: 7, gid: 8, mtimeMs: past }, readFileChunks(path.join(src, 'f')), signal);
      await s.addEntry({ name: 'd', type: 'directory', size: 0, mode: 0o750, uid: gid, gid: uid, mtimeMs: future });
      await s.close();
      const tarFile = path.join(w.location, 'spaces/sp.tar');

      const listing = execFileSync('tar', ['--numeric-owner', '--utc', '-tvf', tarFile], { env: { ...process.env, TZ: 'UTC' } }).toString();
      expect(listing).toMatch(/^-rw-r----- 3000000\/16777221 +6 2300-01-01 00:00 f$/m);
      expect(listing).toMatch(/^-rw------- 7\/8 +6 1960-06-15 12:00 old$/m);
      expect(listing).toMatch(/^drwxr-x--- 16777221\/3000000 +0 2300-01-01 00:00 d\/$/m);

      // Extracted as root, GNU tar gives the files the owners and times in the archive.
      expect(process.getuid?.(), 'this test extracts as root to check owners').toBe(0);
      const out = path.join(t.dir, 'big-out');
      mkdirSync(out);
      execFileSync('tar', ['--numeric-owner', '--same-owner', '--warning=no-timestamp', '-xpf', tarFile, '-C', out], { stdio: 'pipe' });
      const f = statSync(path.join(out, 'f'));
      expect([f.uid, f.gid, f.mtimeMs]).toEqual([uid, gid, future]);
      expect(statSync(path.join(out, 'old')).mtimeMs).toBe(past);
      const d = statSync(path.join(out, 'd'));
      expect([d.uid, d.gid]).toEqual([gid, uid]);

      const seen = [];
      for await (const m of (await target.open({ instance: 'i', backupId: 'b1' })).readSpace('sp', signal)) {
        for await (const _ of m.body) void _;
        seen.push(m.header);
      }
      expect(seen.map((h) => [h.name, h.uid, h.gid, h.mtimeMs])).toEqual([
        ['f', uid, gid, future],
        ['old', 7, 8, past],
        ['d', gid, uid, future],
      ]);
    });

    it('the reader reads what GNU tar writes for them, in pax and in GNU (base-256) format', async () => {
      const src = path.join(t.dir, 'gnu-src');
      mkdirSync(src);
      const f = path.join(src, 'f');
      writeFileSync(f, 'x');
      execFileSync('chown', [`${uid}:${gid}`, f]);
      execFileSync('touch', ['-d', '2300-01-01T00:00:00Z', f]);
      for (const format of ['pax', 'gnu']) {
        const dir = path.join(t.dir, `big/i/gnu-${format}`);
        mkdirSync(path.join(dir, 'spaces'), { recursive: true });
        execFileSync('tar', [`--format=${format}`, '-cf', path.join(dir, 'spaces/sp.tar'), '-C', src, 'f']);
        const headers = [];
        for await (const m of (await tarTarget({ path: path.join(t.dir, 'big') }).open({ instance: 'i', backupId: `gnu-${format}` })).readSpace('sp', new AbortController().signal)) {
          for await (const _ of m.body) void _;
          headers.push(m.header);
        }
        expect(headers.map((h) => [h.name, h.size, h.uid, h.gid, h.mtimeMs]), format).toEqual([['f', 1, uid, gid, future]]);
      }
    });

    it('a member of 8 GiB and more: GNU tar lists its size, the reader reads it (a sparse file, no 8 GiB written)', async () => {
      const size = 2 ** 33 + 5;
      const header = encodeHeader({ name: 'huge.bin', type: 'file', size, mode: 0o600, uid, gid, mtimeMs: future });
      const decoded = decodeHeader(header);
      expect(decoded && !('needPax' in decoded) && decoded.header).toMatchObject({ name: 'huge.bin', size, uid, gid, mtimeMs: future });
      const dir = path.join(t.dir, 'big/i/huge');
      mkdirSync(path.join(dir, 'spaces'), { recursive: true });
      const file = path.join(dir, 'spaces/sp.tar');
      const fd = openSync(file, 'w');
      writeSync(fd, header, 0, header.length, 0);
      const end = header.length + size + padding(size);
      ftruncateSync(fd, end + 2 * block);
      closeSync(fd);
      const listing = execFileSync('tar', ['--numeric-owner', '-tvf', file]).toString();
      expect(listing).toMatch(new RegExp(`^-rw------- 3000000/16777221 +${size} 2300-01-01 \\d\\d:\\d\\d huge\\.bin$`, 'm'));
      const sizes = [];
      for await (const m of (await tarTarget({ path: path.join(t.dir, 'big') }).open({ instance: 'i', backupId: 'huge' })).readSpace('sp', new AbortController().signal)) sizes.push(m.header.size);
      expect(sizes).toEqual([size]);
    });
  });
});
