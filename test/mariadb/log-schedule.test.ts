/** `ebr daemon` with a logSchedule copies the server's finished binlogs into the archive between backups. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { writeConfig } from './mariadb-instance.js';
import { createServer, type TestServer } from './server.js';

describe('daemon: logSchedule', () => {
  const t = tempDir('ebr-mdb-logsched-');
  let server: TestServer;
  beforeAll(async () => {
    server = await createServer();
    await server.query('CREATE DATABASE a');
    await server.query('CREATE TABLE a.t (id INT PRIMARY KEY)');
  });
  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('archives binlogs every second without any backup, and stops on SIGTERM', async () => {
    const e = writeConfig(t.dir, server);
    writeFileSync(e.config, `${readFileSync(e.config, 'utf8')}    logSchedule: "* * * * * *"\n`);
    const d = spawnEbr(['--config', e.config, 'daemon']);
    let out = '';
    d.stdout!.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((r) => d.on('exit', (c) => r(c)));
    try {
      await server.query('INSERT INTO a.t VALUES (1)');
      const events = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; stored?: string[] });
      await waitFor('two log syncs that stored something', () => (events().filter((x) => x.event === 'logs-synced' && x.stored!.length > 0).length >= 2 ? true : undefined), 30_000, 100);
      expect(events().some((x) => x.event === 'logs-failed')).toBe(false);
      expect(events().some((x) => x.event === 'backup-complete')).toBe(false);
    } finally {
      d.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const dir = path.join(t.dir, 'backups/mdb/binlog');
    const archived = readdirSync(dir).filter((f) => /^binlog\.\d+$/.test(f));
    expect(archived.length).toBeGreaterThanOrEqual(2);
    for (const f of archived) expect(existsSync(path.join(dir, `${f}.sha256`))).toBe(true);
  });
});
