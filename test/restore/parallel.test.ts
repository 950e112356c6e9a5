/**
 * Spaces are restored in parallel (parallelStreams at a time; one at a time on a sequential target),
 * and the restore stays all-or-nothing. Overlap is proven by the order of events an instrumented
 * target records, never by timing: its readers hold each space at its first member until every space
 * that should be in flight has started, so a sequential restore could never get past that point (it
 * fails at the hang-protection deadline). One space failing its digest while the others are held stops
 * them through their AbortSignal, and nothing is replaced; a restore stopped and killed with SIGKILL
 * while several spaces are half-staged is rolled back by the next command.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ArchiveReader, ArchiveTarget, ReadMember, ReadSpaceOptions } from '../../src/archive/archive-target.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { loadConfig, pickInstance } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';
import { runRestore } from '../../src/workflow/restore.js';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { integrity, makeInstance, writeSqliteConfig, type TestInstance } from '../sqlite/sqlite-instance.js';

/** What the instrumented target does this test, and what it saw. */
const probe = vi.hoisted(() => ({
  events: [] as string[],
  started: new Set<string>(),
  inFlight: 0,
  maxInFlight: 0,
  /** Each space waits at its first member until this many spaces have started (0: no wait). */
  barrier: 0,
  /** Present the target as a sequential medium (tape). */
  sequential: false,
  /** This space's first file gets one byte flipped, once every space is under way. */
  corrupt: undefined as string | undefined,
  /** The other spaces, once under way, yield nothing more until their signal aborts. */
  holdOthers: false,
  reset() {
    this.events = [];
    this.started = new Set();
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.barrier = 0;
    this.sequential = false;
    this.corrupt = undefined;
    this.holdOthers = false;
  },
}));

/** Hang protection only: a correct run never waits this long; a sequential restore would. */
const deadlineMs = 60_000;

async function until(what: string, ok: () => boolean, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!ok()) {
    if (signal?.aborted) return;
    if (Date.now() > end) throw new Error(`instrumented target: waited ${deadlineMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function instrumented(target: ArchiveTarget): ArchiveTarget {
  const wrapped = Object.create(target) as ArchiveTarget & { sequential?: boolean };
  Object.defineProperty(wrapped, 'sequential', { get: () => probe.sequential || target.sequential === true });
  wrapped.open = async (ref) => {
    const reader = await target.open(ref);
    const r: ArchiveReader = Object.create(reader) as ArchiveReader;
    r.readSpace = (space: string, signal: AbortSignal, options?: ReadSpaceOptions) => watched(space, reader.readSpace(space, signal, options), signal);
    return r;
  };
  return wrapped;
}

async function* watched(space: string, members: AsyncIterable<ReadMember>, signal: AbortSignal): AsyncGenerator<ReadMember> {
  probe.events.push(`start ${space}`);
  probe.started.add(space);
  probe.maxInFlight = Math.max(probe.maxInFlight, ++probe.inFlight);
  try {
    let first = true;
    for await (const m of members) {
      if (first && probe.barrier > 0) await until(`${probe.barrier} spaces to be read at once (started: ${[...probe.started].join(', ')})`, () => probe.started.size >= probe.barrier);
      first = false;
      if (probe.corrupt === space && m.header.type === 'file' && !probe.events.includes(`corrupt ${space}`)) {
        probe.events.push(`corrupt ${space}`);
        yield { header: m.header, body: flipped(m.body) };
        continue;
      }
      if (probe.holdOthers && probe.corrupt !== space) {
        await until(`the signal of space ${space} to abort`, () => signal.aborted, signal);
        probe.events.push(`aborted ${space}`);
        throw signal.reason;
      }
      yield m;
    }
  } finally {
    probe.inFlight--;
    probe.events.push(`end ${space}`);
  }
}

async function* flipped(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let done = false;
  for await (const piece of body) {
    if (done || piece.length === 0) {
      yield piece;
      continue;
    }
    const copy = Buffer.from(piece);
    copy[0] = copy[0]! ^ 0xff;
    done = true;
    yield copy;
  }
}

vi.mock('../../src/workflow/context.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../../src/workflow/context.js')>();
  return { ...orig, targetOf: (instance: Parameters<typeof orig.targetOf>[0]) => instrumented(orig.targetOf(instance)) };
});

const t = tempDir('ebr-parallel-restore-');
afterAll(() => t.cleanup());
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** main, side and notes each a few MiB of random pages (several 4 MiB chunks each), parallelStreams 3. */
function threeBigSpaces(dir: string, mib: number): TestInstance {
  const inst = makeInstance(dir, { sqliteCatalog: true, padMiB: mib });
  const db = new Database(inst.main);
  db.prepare('ATTACH DATABASE ? AS side').run(inst.side);
  db.prepare('ATTACH DATABASE ? AS notes').run(inst.notes);
  db.exec('CREATE TABLE side.pad (blob BLOB); CREATE TABLE notes.pad (blob BLOB);');
  db.transaction(() => {
    for (let i = 0; i < mib * 16; i++) {
      db.prepare('INSERT INTO side.pad VALUES (randomblob(65536))').run();
      db.prepare('INSERT INTO notes.pad VALUES (randomblob(65536))').run();
    }
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  writeSqliteConfig(dir, { sqliteCatalog: true, parallelStreams: 3, maxBlockMs: 10000 });
  return inst;
}

describe('parallel restore, through an instrumented target', () => {
  let inst: TestInstance;
  let files: string[];
  let backupState: string[];
  let beforeState: string[];
  const pristine = path.join(t.dir, 'pristine');
  const live = () => files.map(sha);

  beforeAll(async () => {
    inst = threeBigSpaces(path.join(t.dir, 'three'), 12);
    files = [inst.main, inst.side, inst.notes];
    const b = await runEbr(['--config', inst.config, 'backup', '--quiet'], { timeoutMs: 300_000 });
    expect(b.code, b.stderr).toBe(0);
    backupState = live();
    // Every file moves on after the backup: a restore that replaced anything shows.
    const db = new Database(inst.main);
    db.prepare('ATTACH DATABASE ? AS side').run(inst.side);
    db.prepare('ATTACH DATABASE ? AS notes').run(inst.notes);
    db.exec("INSERT INTO ledger (at) VALUES (1); INSERT INTO side.mirror (seq) VALUES (1); INSERT INTO notes.note (body) VALUES ('after the backup');");
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    beforeState = live();
    expect(beforeState).not.toEqual(backupState);
    mkdirSync(pristine);
    for (const f of files) copyFileSync(f, path.join(pristine, path.basename(f)));
  }, 300_000);

  beforeEach(() => {
    probe.reset();
    for (const f of files) copyFileSync(path.join(pristine, path.basename(f)), f);
  });

  async function restore() {
    const config = loadConfig(inst.config);
    const catalog = Catalog.open(config.catalog);
    try {
      return await runRestore({ config, instance: pickInstance(config, 't'), catalog, signal: new AbortController().signal });
    } finally {
      catalog.close();
    }
  }

  it('reads and stages all three spaces at once: every space starts before any ends', async () => {
    probe.barrier = 3;
    const r = await restore();
    expect(r.spaces).toHaveLength(3);
    expect(probe.maxInFlight).toBe(3);
    const firstEnd = probe.events.findIndex((e) => e.startsWith('end '));
    expect(probe.events.slice(0, firstEnd).filter((e) => e.startsWith('start '))).toHaveLength(3);
    expect(live()).toEqual(backupState);
    for (const f of files) expect(integrity(f)).toBe('ok');
    expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-'))).toEqual([]);
  });

  it('a sequential target (tape) is read one space after another', async () => {
    probe.sequential = true;
    await restore();
    expect(probe.maxInFlight).toBe(1);
    expect(probe.events).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) {
      expect(probe.events[i]).toMatch(/^start /);
      expect(probe.events[i + 1]).toBe(probe.events[i]!.replace('start', 'end'));
    }
    expect(live()).toEqual(backupState);
  });

  it('one space failing its digest aborts the others in flight; nothing is replaced and every step is undone', async () => {
    probe.barrier = 3;
    probe.corrupt = 'side';
    probe.holdOthers = true;
    const err = await restore().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).code).toBe('digestMismatch');
    expect((err as EbrError).message).toMatch(/space side does not match its digest/);
    // The other two were under way, held, and stopped by their signal, not by running out of work.
    expect(probe.events).toEqual(expect.arrayContaining(['corrupt side', 'aborted main', 'aborted notes']));
    expect(live()).toEqual(beforeState);
    for (const f of files) expect(integrity(f)).toBe('ok');
    expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-'))).toEqual([]);
    const cat = new Database(path.join(inst.dir, 'var/catalog.db'), { readonly: true });
    const row = cat.prepare('SELECT id, status FROM restores ORDER BY id DESC LIMIT 1').get() as { id: number; status: string };
    const staged = cat.prepare("SELECT path FROM restore_steps WHERE restore_id = ? AND op = 'stage'").all(row.id) as Array<{ path: string }>;
    const placed = cat.prepare("SELECT count(*) AS n FROM restore_steps WHERE restore_id = ? AND op = 'place'").get(row.id) as { n: number };
    cat.close();
    expect(row.status).toBe('failed');
    expect(staged.map((s) => path.basename(s.path))).toEqual(expect.arrayContaining(['main.db', 'notes.db', 'side.db']));
    expect(placed.n).toBe(0);
  });
});

describe('parallel restore, the real command', () => {
  it('killed with SIGKILL while several spaces are half-staged: the next command puts every old file back', async () => {
    const inst = threeBigSpaces(path.join(t.dir, 'kill'), 16);
    const files = [inst.main, inst.side, inst.notes];
    const b = await runEbr(['--config', inst.config, '--json', 'backup'], { timeoutMs: 300_000 });
    expect(b.code, b.stderr).toBe(0);
    // What each staged copy grows to: the file as backed up.
    const sizes = new Map(files.map((f) => [path.basename(f), statSync(f).size]));
    const db = new Database(inst.main);
    db.prepare('INSERT INTO ledger (at) VALUES (?)').run(Date.now());
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const before = files.map(sha);

    // Stopped at the 7th chunk written of 3 × 4 chunks: one space at most can be whole by then.
    const child = spawnEbr(['--config', inst.config, 'restore', '--quiet'], { env: { EBR_FAULT_STOP_AT: 'stage-chunk:7' } });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await waitFor('the restore to stop itself', () => readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T'), 120_000);
    const temps = readdirSync(inst.dir).filter((n) => n.includes('.ebr-restore-'));
    const partial = temps.filter((n) => statSync(path.join(inst.dir, n)).size < sizes.get(n.split('.ebr-')[0]!)!);
    // A sequential restore has one file half-written at any moment; this one has several.
    expect(new Set(partial.map((n) => n.split('.ebr-')[0])).size).toBeGreaterThanOrEqual(2);
    child.kill('SIGKILL');
    await exited;

    const next = await runEbr(['--config', inst.config, 'restores', '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/every old file was put back as it was/);
    const rows = JSON.parse(next.stdout) as Array<{ status: string }>;
    expect(rows[0]!.status).toBe('rolled-back');
    expect(files.map(sha)).toEqual(before);
    for (const f of files) expect(integrity(f)).toBe('ok');
    expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-'))).toEqual([]);

    // Then a whole run restores the backup, all spaces at once; the row written after it is gone.
    const ok = await runEbr(['--config', inst.config, 'restore', '--quiet'], { timeoutMs: 300_000 });
    expect(ok.code, ok.stderr).toBe(0);
    const after = new Database(inst.main, { readonly: true });
    expect((after.prepare('SELECT count(*) AS n FROM ledger').get() as { n: number }).n).toBe(0);
    after.close();
  });

  it('a space whose stored bytes were damaged fails the restore; the live files stay as they were', async () => {
    const inst = makeInstance(path.join(t.dir, 'fail'), { sqliteCatalog: true, padMiB: 24 });
    const b = await runEbr(['--config', inst.config, '--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const location = (JSON.parse(b.stdout) as { location: string }).location;
    const db = new Database(inst.main);
    db.prepare('INSERT INTO ledger (at) VALUES (?)').run(Date.now());
    db.close();
    const live = () => [inst.main, inst.side, inst.notes].map(sha);
    const before = live();

    // One byte of notes.db's data flipped in its stream.
    const manifest = JSON.parse(readFileSync(path.join(location, 'manifest.json'), 'utf8')) as { members: Array<{ space: string; type: string; size: number; offset: number; stream: string }> };
    const notes = manifest.members.find((m) => m.space === 'notes' && m.type === 'file' && m.size > 4096)!;
    const flip = () => {
      const fd = openSync(path.join(location, notes.stream), 'r+');
      const one = Buffer.alloc(1);
      readSync(fd, one, 0, 1, notes.offset + 1000);
      one[0] = one[0]! ^ 0xff;
      writeSync(fd, one, 0, 1, notes.offset + 1000);
      closeSync(fd);
    };
    flip();
    const r = await runEbr(['--config', inst.config, 'restore']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/notes/);
    expect(r.stderr).toMatch(/does not match its digest|is not the stream the backup stored/);
    expect(live()).toEqual(before);
    expect(integrity(inst.main)).toBe('ok');
    expect(readdirSync(inst.dir).filter((n) => n.includes('.ebr-'))).toEqual([]);

    flip();
    const ok = await runEbr(['--config', inst.config, 'restore']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(integrity(inst.main)).toBe('ok');
  });
});
