/**
 * What is restored is what was backed up: an archive edited after the backup (a member's path, its
 * digest, its name, a tar member of another kind) is refused by verify and restore, naming the member;
 * nothing is written anywhere; and a link planted in the destination never carries a write elsewhere.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { integrity, makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-tamper-');
afterAll(() => t.cleanup());
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

interface Manifest {
  members: Array<{ space: string; name: string; path: string; type: string; size: number; sha256: string; stream: string; offset: number }>;
}

function archiveDir(inst: TestInstance): string {
  const base = path.join(inst.dir, 'var/backups/t');
  return path.join(base, readdirSync(base).sort().at(-1)!);
}
function editManifest(inst: TestInstance, edit: (m: Manifest) => void): void {
  const file = path.join(archiveDir(inst), 'manifest.json');
  const m = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  edit(m);
  writeFileSync(file, `${JSON.stringify(m, null, 2)}\n`);
}
function catalogExec(inst: TestInstance, sql: string, ...args: unknown[]): void {
  const db = new Database(path.join(inst.dir, 'var/catalog.db'));
  try {
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}
async function freshInstance(name: string, target: 'tar' | 'dir' = 'tar'): Promise<{ inst: TestInstance; live: () => string[] }> {
  const inst = makeInstance(path.join(t.dir, name), { sqliteCatalog: true, target });
  const b = await runEbr(['--config', inst.config, 'backup', '--quiet']);
  expect(b.code, b.stderr).toBe(0);
  return { inst, live: () => [inst.main, inst.side, inst.notes].map(sha) };
}
const ebr = (inst: TestInstance, ...args: string[]) => runEbr(['--config', inst.config, ...args]);

describe('an archive edited after the backup', () => {
  for (const target of ['tar', 'dir'] as const) {
    it(`a member's path pointed elsewhere is named by verify and refused by restore; nothing is written there (${target})`, async () => {
      const { inst, live } = await freshInstance(`path-${target}`, target);
      const elsewhere = path.join(t.dir, `elsewhere-${target}`);
      mkdirSync(elsewhere);
      editManifest(inst, (m) => {
        const notes = m.members.find((x) => x.space === 'notes' && x.type === 'file')!;
        notes.path = path.join(elsewhere, 'notes.db');
      });
      const v = await ebr(inst, 'verify', 'latest');
      expect(v.code).toBe(1);
      expect(v.stderr + v.stdout).toMatch(/notes\.db/);
      expect(v.stderr + v.stdout).toMatch(/the catalog recorded .*at discovery|manifest\.json has sha256/);
      const before = live();
      const r = await ebr(inst, 'restore', '--partial', 'notes');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/does not match the catalog: member notes\.db of space notes: the manifest says path/);
      expect(r.stderr).toMatch(/nothing was written/);
      expect(readdirSync(elsewhere)).toEqual([]);
      expect(live()).toEqual(before);
    });
  }

  it("a member's digest changed with its bytes is named, with the catalog's digest", async () => {
    const { inst } = await freshInstance('digest');
    editManifest(inst, (m) => {
      const notes = m.members.find((x) => x.space === 'notes' && x.type === 'file')!;
      notes.sha256 = 'f'.repeat(64);
    });
    const v = await ebr(inst, '--json', 'verify', 'latest');
    expect(v.code).toBe(1);
    const doc = JSON.parse(v.stdout) as { damaged: Array<{ member: string; problem: string }> };
    expect(doc.damaged.some((d) => d.member === 'notes.db' && /the catalog recorded/.test(d.problem))).toBe(true);
    const r = await ebr(inst, 'restore', '--to', path.join(t.dir, 'digest-out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/member notes\.db of space notes: the manifest says sha256 f{64}, the catalog recorded/);
    expect(existsSync(path.join(t.dir, 'digest-out'))).toBe(false);
  });

  it('a member name that climbs out with .. is refused even where the catalog was made from that archive', async () => {
    const { inst, live } = await freshInstance('dotdot');
    const evil = '../../evil.db';
    editManifest(inst, (m) => {
      const notes = m.members.find((x) => x.space === 'notes' && x.type === 'file')!;
      notes.name = evil;
    });
    // As a catalog rebuilt from this archive would have it: the catalog believes the manifest.
    catalogExec(inst, 'UPDATE backups SET manifest_sha256 = NULL');
    catalogExec(inst, "UPDATE members SET name = ? WHERE name = 'notes.db'", evil);
    catalogExec(inst, "UPDATE discovery SET chunk = ? WHERE chunk = 'notes.db'", evil);
    const before = live();
    const out = path.join(t.dir, 'dotdot-out', 'a', 'b');
    const r = await ebr(inst, 'restore', '--to', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/member "\.\.\/\.\.\/evil\.db" of space notes climbs out with \.\./);
    expect(existsSync(path.join(t.dir, 'dotdot-out'))).toBe(false);
    expect(existsSync(path.join(t.dir, 'evil.db'))).toBe(false);
    expect(live()).toEqual(before);
  });

  it('a stream edited outside its members (a header with its checksum redone, bytes appended) is named by verify and refused by restore', async () => {
    const { inst, live } = await freshInstance('frame');
    const stream = path.join(archiveDir(inst), 'spaces/notes.tar');
    const original = readFileSync(stream);
    // The first member's mtime, one octal digit changed, and the header's checksum made right again:
    // the tar is well formed, every member body (and digest) as it was; only the frame digest can tell.
    const edited = Buffer.from(original);
    edited[136 + 5] = edited[136 + 5] === 0x37 ? 0x36 : 0x37;
    edited.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += edited[i]!;
    edited.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    for (const [what, bytes] of [
      ['header', edited],
      ['appended', Buffer.concat([original, Buffer.alloc(1024)])],
    ] as const) {
      writeFileSync(stream, bytes);
      const v = await ebr(inst, 'verify', 'latest');
      expect(v.code, what).toBe(1);
      expect(v.stderr + v.stdout, what).toMatch(/is not the stream the backup stored/);
      const before = live();
      const r = await ebr(inst, 'restore', '--partial', 'notes');
      expect(r.code, what).toBe(1);
      expect(r.stderr, what).toMatch(/notes\.tar is not the stream the backup stored/);
      expect(live(), what).toEqual(before);
      expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-')), what).toEqual([]);
    }
    writeFileSync(stream, original);
    expect((await ebr(inst, 'verify', 'latest')).code).toBe(0);
  });

  it('a space stream holding a hard link (a member kind ebr never writes) is refused, nothing replaced', async () => {
    const { inst, live } = await freshInstance('hardlink');
    const dir = archiveDir(inst);
    const stage = path.join(t.dir, 'hardlink-stage');
    mkdirSync(stage);
    // GNU tar stores the second name of a file as a hard link member (type '1'): here notes.db itself.
    writeFileSync(path.join(stage, 'other'), 'x');
    execFileSync('ln', [path.join(stage, 'other'), path.join(stage, 'notes.db')]);
    execFileSync('tar', ['-C', stage, '-cf', path.join(dir, 'spaces/notes.tar'), 'other', 'notes.db']);
    execFileSync('tar', ['--delete', '-f', path.join(dir, 'spaces/notes.tar'), 'other']);
    const before = live();
    const r = await ebr(inst, 'restore', '--partial', 'notes');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unsupported tar member type '1'/);
    expect(live()).toEqual(before);
    expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-'))).toEqual([]);
  });
});

describe('a link planted in the destination', () => {
  it('at a restored file: the link is replaced, the file it pointed at keeps its bytes, mode and owner', async () => {
    const { inst } = await freshInstance('planted');
    const out = path.join(t.dir, 'planted-out');
    mkdirSync(out);
    const victim = path.join(t.dir, 'victim.txt');
    writeFileSync(victim, 'keep me');
    chmodSync(victim, 0o604);
    if (process.getuid?.() === 0) execFileSync('chown', ['12345:12345', victim]);
    const before = statSync(victim);
    symlinkSync(victim, path.join(out, 'notes.db'));
    const r = await ebr(inst, 'restore', '--to', out);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    const after = statSync(victim);
    expect([after.mode, after.uid, after.gid]).toEqual([before.mode, before.uid, before.gid]);
    expect(lstatSync(path.join(out, 'notes.db')).isFile()).toBe(true);
    expect(integrity(path.join(out, 'notes.db'))).toBe('ok');
    expect(readdirSync(out).filter((n) => n.includes('.ebr-'))).toEqual([]);
  });
});
