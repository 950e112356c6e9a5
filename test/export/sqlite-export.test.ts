/**
 * `ebr export` on a real SQLite instance backed up with the tar target: the zip and the tgz unpack with
 * the system's unzip and tar into the very bytes of the databases and of the manifest; --partial takes
 * only the named spaces; a damaged archive, an existing output and bad usage leave no file behind.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';

interface Member {
  space: string;
  name: string;
  path: string;
  type: string;
  size: number;
  sha256: string;
  mode?: number;
  mtimeMs?: number;
  stream: string;
  offset: number;
}

const t = tempDir('ebr-export-');
afterAll(() => t.cleanup());
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const ebr = (inst: TestInstance, ...args: string[]) => runEbr(['--config', inst.config, ...args]);

function hasTool(name: string, versionArg: string): boolean {
  try {
    execFileSync(name, [versionArg], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const unzipPresent = hasTool('unzip', '-v');

function archiveDir(inst: TestInstance): string {
  const base = path.join(inst.dir, 'var/backups/t');
  return path.join(base, readdirSync(base).sort().at(-1)!);
}
function manifestOf(inst: TestInstance): { backupId: string; members: Member[] } {
  return JSON.parse(readFileSync(path.join(archiveDir(inst), 'manifest.json'), 'utf8'));
}

/** Unpacks with the system's tools: unzip for zip, tar -xzf for tgz. */
function unpack(file: string, format: 'zip' | 'tgz', into: string): void {
  mkdirSync(into, { recursive: true });
  if (format === 'zip') execFileSync('unzip', ['-q', file, '-d', into], { env: { ...process.env, TZ: 'UTC' } });
  else execFileSync('tar', ['-xzf', file, '-C', into]);
}

/** Every file, relative to dir. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`])).sort();
}

describe('ebr export of a SQLite backup (tar target)', () => {
  let inst: TestInstance;
  let manifest: { backupId: string; members: Member[] };
  beforeAll(async () => {
    inst = makeInstance(path.join(t.dir, 'inst'), { target: 'tar', padMiB: 4 });
    const b = await ebr(inst, 'backup', '--quiet');
    expect(b.code, b.stderr).toBe(0);
    manifest = manifestOf(inst);
  });

  for (const format of ['zip', 'tgz'] as const) {
    it(`${format}: unpacks into the databases' bytes, the manifest, their modes and mtimes`, async () => {
      if (format === 'zip') expect(unzipPresent, 'the system unzip is needed to read the zip back (apt-get install unzip)').toBe(true);
      const out = path.join(t.dir, `all.${format}`);
      const r = await ebr(inst, '--json', 'export', manifest.backupId, '--format', format, '--output', out);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ output: out, format, backupId: manifest.backupId, spaces: ['main', 'side', 'notes'], members: manifest.members.length });
      expect(doc.bytes).toBe(statSync(out).size);
      const into = path.join(t.dir, `unpacked-${format}`);
      unpack(out, format, into);
      expect(filesUnder(into)).toEqual(['manifest.json', ...manifest.members.filter((m) => m.type === 'file').map((m) => `${m.space}/${m.name}`)].sort());
      expect(readFileSync(path.join(into, 'manifest.json'))).toEqual(readFileSync(path.join(archiveDir(inst), 'manifest.json')));
      for (const m of manifest.members.filter((x) => x.type === 'file')) {
        const f = path.join(into, m.space, m.name);
        expect(sha(f), `${m.space}/${m.name}`).toBe(m.sha256);
        expect(statSync(f).size).toBe(m.size);
        if (m.mode !== undefined) expect(statSync(f).mode & 0o7777, `mode of ${m.name}`).toBe(m.mode);
        // zip keeps DOS time: two-second steps.
        if (m.mtimeMs !== undefined) expect(Math.abs(statSync(f).mtimeMs - m.mtimeMs), `mtime of ${m.name}`).toBeLessThan(format === 'zip' ? 2001 : 1000);
      }
      // Nothing wrote to the instance since the backup: the databases themselves match.
      for (const [space, file] of [['main', inst.main], ['side', inst.side], ['notes', inst.notes]] as const) {
        expect(sha(path.join(into, space, path.basename(file))), file).toBe(sha(file));
      }
      expect(readdirSync(t.dir).filter((f) => f.includes('.ebr-export-'))).toEqual([]);
    });
  }

  it('--partial exports only the named spaces, a critical one too', async () => {
    for (const [format, spaces] of [['tgz', ['notes']], ['zip', ['main', 'side']]] as const) {
      const out = path.join(t.dir, `partial-${spaces.join('-')}.${format}`);
      const r = await ebr(inst, '--json', 'export', 'latest', '--format', format, '--output', out, '--partial', ...spaces);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).spaces).toEqual(spaces);
      const names = (format === 'zip' ? execFileSync('unzip', ['-Z1', out]) : execFileSync('tar', ['-tzf', out])).toString().trim().split('\n').sort();
      const expected = manifest.members.filter((m) => (spaces as readonly string[]).includes(m.space)).map((m) => `${m.space}/${m.name}`);
      expect(names).toEqual(['manifest.json', ...expected].sort());
    }
  });

  it('an existing output is refused without --force and replaced with it', async () => {
    const out = path.join(t.dir, 'taken.zip');
    writeFileSync(out, 'keep me');
    const r = await ebr(inst, 'export', 'latest', '--format', 'zip', '--output', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/taken\.zip already exists; ebr export does not overwrite it/);
    expect(r.stderr).toMatch(/hint: pass --force/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    const f = await ebr(inst, 'export', 'latest', '--format', 'zip', '--output', out, '--force');
    expect(f.code, f.stderr).toBe(0);
    expect(readFileSync(out).subarray(0, 4)).toEqual(Buffer.from('PK\x03\x04', 'latin1'));
  });

  it('bad usage exits 2 naming the known values, and writes nothing', async () => {
    const out = path.join(t.dir, 'usage', 'x.zip');
    mkdirSync(path.dirname(out));
    const space = await ebr(inst, 'export', 'latest', '--format', 'zip', '--output', out, '--partial', 'nosuch');
    expect(space.code).toBe(2);
    expect(space.stderr).toMatch(/has no space named nosuch/);
    expect(space.stderr).toMatch(/hint: known spaces: main, side, notes/);
    const format = await ebr(inst, 'export', 'latest', '--format', 'rar', '--output', out);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/unknown export format "rar"/);
    expect(format.stderr).toMatch(/one of: zip, tgz/);
    const json = await ebr(inst, '--json', 'export', 'latest', '--format', 'rar', '--output', out);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).error.code).toBe('usage');
    const noOutput = await ebr(inst, 'export', 'latest', '--format', 'tgz');
    expect(noOutput.code).toBe(2);
    expect(noOutput.stderr).toMatch(/needs --output FILE/);
    const noFormat = await ebr(inst, 'export', 'latest', '--output', out);
    expect(noFormat.code).toBe(2);
    expect(noFormat.stderr).toMatch(/needs --format/);
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });
});

describe('ebr export of a damaged archive', () => {
  it('a byte flipped at the end of a member fails the export naming backup, space and member; no output, no temporary file', async () => {
    const inst = makeInstance(path.join(t.dir, 'damaged'), { target: 'tar' });
    const b = await ebr(inst, 'backup', '--quiet');
    expect(b.code, b.stderr).toBe(0);
    const { backupId, members } = manifestOf(inst);
    const m = members.find((x) => x.space === 'notes' && x.type === 'file' && x.size > 1000)!;
    // The member's last byte: everything before it has gone into the archive when the digest is found wrong.
    const at = m.offset + m.size - 1;
    const fd = openSync(path.join(archiveDir(inst), m.stream), 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const outDir = path.join(t.dir, 'damaged-out');
    mkdirSync(outDir);
    for (const format of ['zip', 'tgz'] as const) {
      const out = path.join(outDir, `x.${format}`);
      const r = await ebr(inst, 'export', backupId, '--format', format, '--output', out);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`member ${m.name} of space notes of backup ${backupId} does not match its digest`);
      expect(r.stderr).toMatch(/hint: no export was written/);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(outDir)).toEqual([]);
    }
    // The other spaces are whole: exporting only them works.
    const ok = await ebr(inst, 'export', backupId, '--format', 'tgz', '--output', path.join(outDir, 'rest.tgz'), '--partial', 'main', 'side');
    expect(ok.code, ok.stderr).toBe(0);
  });
});
