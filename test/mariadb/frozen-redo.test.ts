/**
 * The frozen redo log holds every transaction committed before the window, on its own.
 *
 * With the binlog on, InnoDB writes a commit's redo record lazily: the binlog already makes the commit
 * durable, and a background write (every `innodb_flush_log_at_timeout` seconds) adds the record later,
 * followed by a binlog checkpoint event saying the older binlogs are settled. A freeze taken file
 * after file (`copy`, `reflink`) could hold the redo log from before that write and the binlog from
 * after it; crash recovery then believed the checkpoint and rolled back a committed transaction (a
 * point-in-time restore lost a row committed before the backup, and replayed later ones from the
 * recorded position). ebr flushes InnoDB's log once commits are held, before anything is frozen.
 *
 * Shown here without the binlog's help: the server writes its redo log in the background only once in
 * 2700 s, a row is committed just before the backup, and the backup's own files are started with no
 * binlog at all. Had the redo log held the row only as prepared, that server would refuse to start
 * ("Found 1 prepared transactions!") or roll it back.
 */
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { writeConfig, type EbrSetup } from './mariadb-instance.js';
import { createServer, type TestServer } from './server.js';

const t = tempDir('ebr-mdb-redo-');
let server: TestServer;
let e: EbrSetup;

beforeAll(async () => {
  server = await createServer({ args: ['--innodb-flush-log-at-timeout=2700'] });
  await server.query('CREATE DATABASE a');
  await server.query('CREATE TABLE a.marks (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(40) NOT NULL) ENGINE=InnoDB');
  e = writeConfig(t.dir, server);
});

afterAll(async () => {
  await server?.cleanup();
  t.cleanup();
});

describe('the frozen redo log', () => {
  it('holds a transaction committed just before the backup: the frozen files alone, without any binlog, start with its row', async () => {
    // One commit right before the backup (a later commit's prepare would write this one's record):
    // nothing but the backup itself writes the redo log now.
    await server.query("INSERT INTO a.marks (label) VALUES ('just before')");
    const b = await e.ebrJson<{ backupId: string }>(['backup']);

    // The backup's own files (the dir target keeps each space's files under their datadir names), minus
    // every binlog: InnoDB must recover the rows from its redo log alone.
    const spaces = path.join(t.dir, 'backups', 'mdb', b.backupId, 'spaces');
    const datadir = path.join(t.dir, 'frozen');
    mkdirSync(datadir);
    for (const space of readdirSync(spaces)) cpSync(path.join(spaces, space), datadir, { recursive: true });
    for (const f of readdirSync(datadir)) if (/^binlog\./.test(f)) rmSync(path.join(datadir, f));

    const frozen = await createServer({ datadir, binlog: false });
    try {
      const rows = await frozen.query<{ label: string }>('SELECT label FROM a.marks ORDER BY id');
      expect(rows.map((r) => r.label)).toEqual(['just before']);
    } finally {
      await frozen.cleanup();
    }
  });
});
