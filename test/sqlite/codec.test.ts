/**
 * Compression and encryption through the CLI, on real SQLite files and the tar and dir targets: what
 * is stored is not the plain bytes, what comes back is, the key is checked before anything is written,
 * and a flipped byte in a stored stream is named by verify and refused by restore.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, openSync, readFileSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { integrity, makeInstance, writeSqliteConfig, type TestInstance } from './sqlite-instance.js';

const t = tempDir('ebr-codec-');
afterAll(() => t.cleanup());
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** Text no stored byte may show when the archive is encrypted (it is in every row of main.db). */
const marker = 'ledger-marker-7f3a';

interface Shown {
  bytes: number;
  storedBytes: number | null;
  codec: { compression: string; level?: number; encryption?: { alg: string; keyId: string; wrappedKey: string } } | null;
  spaces: Array<{ name: string; bytes: number; storedBytes?: number }>;
}

function instanceWith(name: string, extra: string[], target: 'tar' | 'dir' = 'tar'): TestInstance {
  const inst = makeInstance(path.join(t.dir, name), { sqliteCatalog: true, target });
  const db = new Database(inst.main);
  db.exec('CREATE TABLE text (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO text (body) VALUES (?)');
  // Compressible: the same words again and again, as real tables are.
  db.transaction(() => {
    for (let i = 0; i < 20000; i++) ins.run(`${marker} row ${i} of a table whose rows look alike, as rows do`);
  })();
  db.close();
  writeSqliteConfig(inst.dir, { sqliteCatalog: true, ...(target === 'dir' ? { target } : {}), extra });
  return inst;
}

const ebr = (inst: TestInstance, ...args: string[]) => runEbr(['--config', inst.config, ...args]);

async function backup(inst: TestInstance): Promise<{ id: string; shown: Shown }> {
  const b = await ebr(inst, '--json', 'backup');
  expect(b.code, b.stderr).toBe(0);
  const id = (JSON.parse(b.stdout) as { backupId: string }).backupId;
  const s = await ebr(inst, '--json', 'show', id);
  expect(s.code, s.stderr).toBe(0);
  return { id, shown: JSON.parse(s.stdout) as Shown };
}

function archiveOf(inst: TestInstance, id: string): string {
  return path.join(inst.dir, 'var/backups/t', id);
}

function restoredEqual(inst: TestInstance, into: string): void {
  for (const f of [inst.main, inst.side, inst.notes]) {
    const back = path.join(into, path.basename(f));
    expect(sha(back), back).toBe(sha(f));
  }
  expect(integrity(path.join(into, 'main.db'))).toBe('ok');
}

/** The first four bytes of each compressor's stream (zstd frame, gzip member, lz4 frame). */
const magic = { zstd: '28b52ffd', gzip: '1f8b0800', lz4: '04224d18' } as const;

describe('compression through the CLI', () => {
  for (const type of ['zstd', 'lz4', 'gzip'] as const) {
    it(`${type}: stored smaller than the data, verified, restored byte for byte`, async () => {
      const inst = instanceWith(`c-${type}`, [`compression: { type: ${type} }`]);
      const { id, shown } = await backup(inst);
      expect(shown.codec?.compression).toBe(type);
      expect(shown.codec?.encryption).toBeUndefined();
      expect(shown.storedBytes).toBeGreaterThan(0);
      expect(shown.storedBytes!).toBeLessThan(0.6 * shown.bytes);
      const main = path.join(archiveOf(inst, id), 'spaces/main.tar');
      // The stream is in the compressor's own format (its magic number first), and the tool unpacks it into ebr's tar.
      expect(readFileSync(main).subarray(0, 4).toString('hex')).toBe(magic[type]);
      const unpacked = execFileSync(type, ['-dc'], { input: readFileSync(main), maxBuffer: 1 << 30 });
      writeFileSync(path.join(inst.dir, 'main-plain.tar'), unpacked);
      expect(execFileSync('tar', ['-tf', path.join(inst.dir, 'main-plain.tar')]).toString()).toContain('main.db');
      const v = await ebr(inst, 'verify', id);
      expect(v.code, v.stderr + v.stdout).toBe(0);
      const into = path.join(inst.dir, 'restored');
      const r = await ebr(inst, 'restore', '--to', into);
      expect(r.code, r.stderr).toBe(0);
      restoredEqual(inst, into);
    });
  }
});

describe('encryption through the CLI', () => {
  const keyFile = path.join(t.dir, 'backup.key');
  const otherKey = path.join(t.dir, 'other.key');
  writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  writeFileSync(otherKey, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  for (const target of ['tar', 'dir'] as const) {
    it(`zstd + AES-256-GCM (${target} target): no plain byte stored, the key nowhere, restored byte for byte`, async () => {
      const inst = instanceWith(`e-${target}`, ['compression: { type: zstd }', `encryption: { keyFile: ${keyFile} }`], target);
      const { id, shown } = await backup(inst);
      expect(shown.codec?.encryption?.alg).toBe('aes-256-gcm');
      const key = readFileSync(keyFile, 'utf8').trim();
      // Nothing stored shows the rows' text, and nothing anywhere (archive, catalog, output) holds the key.
      const stored = listFiles(archiveOf(inst, id));
      for (const f of stored.filter((x) => !x.endsWith('manifest.json'))) expect(readFileSync(f).includes(marker), f).toBe(false);
      for (const f of [...stored, path.join(inst.dir, 'var/catalog.db')]) expect(readFileSync(f).includes(key), f).toBe(false);
      expect(JSON.stringify(shown)).not.toContain(key);
      const v = await ebr(inst, 'verify', id);
      expect(v.code, v.stderr + v.stdout).toBe(0);
      const into = path.join(inst.dir, 'restored');
      const r = await ebr(inst, 'restore', '--to', into);
      expect(r.code, r.stderr).toBe(0);
      restoredEqual(inst, into);
    });
  }

  it('a wrong key, or none, fails the restore before anything is written, naming the key the backup needs', async () => {
    const inst = instanceWith('e-wrong', [`encryption: { keyFile: ${keyFile} }`]);
    const { shown } = await backup(inst);
    const needs = shown.codec!.encryption!.keyId;
    writeSqliteConfig(inst.dir, { sqliteCatalog: true, extra: [`encryption: { keyFile: ${otherKey} }`] });
    const into = path.join(inst.dir, 'restored-wrong');
    const wrong = await ebr(inst, 'restore', '--to', into);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain(needs);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(into) ? readdirSync(into) : []).toEqual([]);
    writeSqliteConfig(inst.dir, { sqliteCatalog: true });
    const none = await ebr(inst, 'restore', '--to', into);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/encrypt/);
    expect(none.stderr).toContain(needs);
    expect(existsSync(into) ? readdirSync(into) : []).toEqual([]);
    // The right key again: it restores.
    writeSqliteConfig(inst.dir, { sqliteCatalog: true, extra: [`encryption: { keyFile: ${keyFile} }`] });
    const right = await ebr(inst, 'restore', '--to', into);
    expect(right.code, right.stderr).toBe(0);
    restoredEqual(inst, into);
  });

  it('a flipped byte in an encrypted stream: verify names the space, restore refuses and writes nothing', async () => {
    const inst = instanceWith('e-flip', ['compression: { type: zstd }', `encryption: { keyFile: ${keyFile} }`]);
    const { id } = await backup(inst);
    const notes = path.join(archiveOf(inst, id), 'spaces/notes.tar');
    flipByte(notes, Math.floor(statSync(notes).size / 2));
    const v = await ebr(inst, '--json', 'verify', id);
    expect(v.code).toBe(1);
    const damaged = (JSON.parse(v.stdout) as { damaged: Array<{ space: string }> }).damaged;
    expect(damaged.map((d) => d.space)).toContain('notes');
    const into = path.join(inst.dir, 'restored-flip');
    const r = await ebr(inst, 'restore', '--to', into);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/notes/);
    expect(existsSync(into) ? readdirSync(into) : []).toEqual([]);
  });

  it('a malformed key file is refused before the database is touched, naming the key and the fix', async () => {
    const bad = path.join(t.dir, 'short.key');
    writeFileSync(bad, 'abcd\n');
    const inst = instanceWith('e-bad', [`encryption: { keyFile: ${bad} }`]);
    const b = await ebr(inst, 'backup');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/encryption\.keyFile/);
    expect(b.stderr).not.toContain('abcd');
    rmSync(bad);
  });
});

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

function flipByte(file: string, at: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}
