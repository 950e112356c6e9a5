/**
 * The exact statements each server family gets, checked against a recording connection. No MySQL
 * server runs here, so this is how the MySQL 8 path (LOCK INSTANCE FOR BACKUP + log_status) is tested;
 * the MariaDB path runs the same statements against a real server in the other tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import type { InstanceContext, RestorePlan } from '../../src/adapter-api.js';
import { mariadbConfigSchema, type MariadbSettings } from '../../adapters/mariadb/mariadb-config.js';
import { fullRestorer } from '../../adapters/mariadb/mariadb-full-restore.js';
import { binlogInUseFlag } from '../../adapters/mariadb/mariadb-recovery.js';
import type { Row, Sql } from '../../adapters/mariadb/mariadb-connection.js';
import { binlogSource } from '../../adapters/mariadb/mariadb-binlogs.js';
import { dialectFor, parseVersion } from '../../adapters/mariadb/mariadb-queries.js';
import { mariadbSession } from '../../adapters/mariadb/mariadb-session.js';

type Answer = Row[] | (() => Row[]);

function recorder(answers: Array<[RegExp, Answer]>): Sql & { log: string[]; destroyed: boolean } {
  const log: string[] = [];
  return {
    log,
    destroyed: false,
    threadId: 42,
    closed: false,
    busy: false,
    async query(sql) {
      log.push(sql);
      if (/CONNECTION_ID/.test(sql)) return [{ id: 42 }];
      const a = answers.find(([re]) => re.test(sql))?.[1] ?? [];
      return typeof a === 'function' ? a() : a;
    },
    destroy() {
      this.destroyed = true;
    },
    async end() {},
  };
}

const settings = [
  { Variable_name: 'datadir', Value: '/nonexistent/data/' },
  { Variable_name: 'log_bin', Value: 'ON' },
  { Variable_name: 'log_bin_basename', Value: '/nonexistent/data/binlog' },
];

async function window(version: string, comment: string, answers: Array<[RegExp, Answer]>) {
  const v = parseVersion(version, comment);
  const sql = recorder([[/^SHOW GLOBAL VARIABLES/, settings], ...answers]);
  const session = mariadbSession(sql, { instance: 'x', version: v, dialect: dialectFor(v), lockWaitTimeoutS: 30, blockTimeoutMs: 1500, requireBinlog: true });
  const signal = new AbortController().signal;
  await session.checkpoint(signal);
  const token = await session.block(signal);
  const meta = await session.unblock(token);
  return { log: sql.log.filter((s) => !s.startsWith('SHOW GLOBAL VARIABLES')), meta };
}

describe('statements per server family', () => {
  it('MariaDB 10.11: BACKUP STAGE, the window at BLOCK_COMMIT, position read just before END while commits are still held', async () => {
    const { log, meta } = await window('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12', [
      [/^SHOW MASTER STATUS$/, [{ File: 'binlog.000003', Position: '1234' }]],
      [/gtid_binlog_pos/, [{ gtid: '0-1-77', serverTime: '2026-01-01 00:00:00.000001', serverEpoch: '1767225600.000001' }]],
    ]);
    expect(log).toEqual([
      'SET SESSION lock_wait_timeout = 30',
      'SET SESSION max_statement_time = 35',
      'BACKUP STAGE START',
      'BACKUP STAGE FLUSH',
      'BACKUP STAGE BLOCK_DDL',
      'SHOW MASTER STATUS',
      'SET SESSION max_statement_time = 1.500',
      'BACKUP STAGE BLOCK_COMMIT',
      'FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS',
      'SELECT CONNECTION_ID() AS id',
      'SHOW MASTER STATUS',
      'SELECT @@global.gtid_binlog_pos AS gtid, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch',
      'BACKUP STAGE END',
      'SET SESSION max_statement_time = 0',
    ]);
    expect(meta.logStart).toBe('binlog.000003:1234');
    expect(meta.files!.binlog_position).toBe('binlog.000003\t1234\t0-1-77\n');
    expect(meta.details).toMatchObject({ flavor: 'mariadb', gtid: '0-1-77', serverEpoch: 1767225600.000001 });
  });

  it('MySQL 8.0: LOCK INSTANCE FOR BACKUP before the window, performance_schema.log_status inside, UNLOCK INSTANCE after', async () => {
    const { log, meta } = await window('8.0.36', 'MySQL Community Server - GPL', [
      [/^SHOW MASTER STATUS$/, [{ File: 'binlog.000007', Position: 157 }]],
      [
        /log_status/,
        [
          {
            local: { gtid_executed: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42', binary_log_file: 'binlog.000007', binary_log_position: 157 },
            engines: '{"InnoDB": {"LSN": 23404342, "LSN_checkpoint": 23404342}}',
            serverTime: '2026-01-01 00:00:00.000001',
            serverEpoch: '1767225600.000001',
          },
        ],
      ],
    ]);
    expect(log).toEqual([
      'SET SESSION lock_wait_timeout = 30',
      'LOCK INSTANCE FOR BACKUP',
      'SHOW MASTER STATUS',
      'SELECT LOCAL AS local, STORAGE_ENGINES AS engines, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch FROM performance_schema.log_status',
      'SELECT CONNECTION_ID() AS id',
      'UNLOCK INSTANCE',
    ]);
    expect(meta.logStart).toBe('binlog.000007:157');
    expect(meta.details).toMatchObject({ flavor: 'mysql', gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-42', lsn: '23404342' });
  });

  it('MySQL 8.4: SHOW BINARY LOG STATUS replaces SHOW MASTER STATUS, in the window and in binlog sync', async () => {
    const status: [RegExp, Row[]] = [/^SHOW BINARY LOG STATUS$/, [{ File: 'binlog.000002', Position: 99 }]];
    const { log } = await window('8.4.3', 'MySQL Community Server - GPL', [status, [/log_status/, [{ local: '{"binary_log_file":"binlog.000002","binary_log_position":99}', engines: '{}', serverTime: 'x', serverEpoch: 1 }]]]);
    expect(log).toContain('SHOW BINARY LOG STATUS');
    expect(log).not.toContain('SHOW MASTER STATUS');

    const sql = recorder([[/^SHOW GLOBAL VARIABLES/, settings], status, [/^SHOW BINARY LOGS$/, [{ Log_name: 'binlog.000001' }, { Log_name: 'binlog.000002' }]]]);
    const source = binlogSource(sql, dialectFor(parseVersion('8.4.3')), 'x');
    await source.rotate();
    expect(await source.list()).toEqual([
      { name: 'binlog.000001', path: '/nonexistent/data/binlog.000001', current: false },
      { name: 'binlog.000002', path: '/nonexistent/data/binlog.000002', current: true },
    ]);
    expect(sql.log.filter((s) => !s.startsWith('SHOW GLOBAL VARIABLES'))).toEqual(['FLUSH BINARY LOGS', 'SHOW BINARY LOG STATUS', 'SHOW BINARY LOGS']);
  });

  it('chooses the tablespace query by version and refuses servers without a backup lock', () => {
    expect(dialectFor(parseVersion('10.5.22-MariaDB')).tablespaces).toMatch(/INNODB_SYS_DATAFILES/);
    expect(dialectFor(parseVersion('10.6.1-MariaDB')).tablespaces).toMatch(/FILENAME AS path FROM information_schema.INNODB_SYS_TABLESPACES/);
    expect(dialectFor(parseVersion('8.0.36')).tablespaces).toMatch(/INNODB_TABLESPACES t JOIN information_schema.INNODB_DATAFILES/);
    expect(() => dialectFor(parseVersion('10.3.39-MariaDB'))).toThrow(/no BACKUP STAGE/);
    expect(() => dialectFor(parseVersion('5.7.44'))).toThrow(/no LOCK INSTANCE FOR BACKUP/);
    expect(parseVersion('11.4.2', 'mariadb.org binary distribution').flavor).toBe('mariadb');
  });
});

/**
 * A data directory on disk for discovery (the files only need to exist), with the binlogs outside it as
 * Debian's `log_bin = /var/log/mysql/mysql-bin.log` puts them, and a server whose binlog rotates when
 * the test says so: `rotate()` starts the next binlog file, as FLUSH BINARY LOGS would.
 */
function rotatingServer(version: string, extra: Row[] = []) {
  const t = tempDir('ebr-mdb-stmt-');
  const data = path.join(t.dir, 'data');
  const logs = path.join(t.dir, 'log-mysql');
  mkdirSync(data);
  mkdirSync(logs);
  for (const f of ['ibdata1', 'ib_logfile0']) writeFileSync(path.join(data, f), 'x');
  let n = 7;
  const name = (k: number) => `mysql-bin.${String(k).padStart(6, '0')}`;
  const rotate = () => {
    n++;
    writeFileSync(path.join(logs, name(n)), 'binlog');
  };
  writeFileSync(path.join(logs, name(n)), 'binlog');
  const vars: Row[] = [
    { Variable_name: 'datadir', Value: `${data}/` },
    { Variable_name: 'log_bin', Value: 'ON' },
    { Variable_name: 'log_bin_basename', Value: `${logs}/mysql-bin` },
    { Variable_name: 'log_bin_index', Value: `${logs}/mysql-bin.index` },
    ...extra,
  ];
  const sql = recorder([
    [/^SHOW GLOBAL VARIABLES/, vars],
    [/^SHOW BINARY LOGS$/, () => Array.from({ length: n - 6 }, (_, i) => ({ Log_name: name(7 + i) }))],
    [/^SHOW (MASTER|BINARY LOG) STATUS$/, () => [{ File: name(n), Position: 157 }]],
    [/gtid_binlog_pos/, () => [{ gtid: '0-1-77', serverTime: 'x', serverEpoch: 1 }]],
    [/log_status/, () => [{ local: { binary_log_file: name(n), binary_log_position: 157 }, engines: '{}', serverTime: 'x', serverEpoch: 1 }]],
  ]);
  const v = parseVersion(version);
  const session = mariadbSession(sql, { instance: 'x', version: v, dialect: dialectFor(v), lockWaitTimeoutS: 30, blockTimeoutMs: 1500, requireBinlog: true });
  const inWindow = () => sql.log.filter((s) => !s.startsWith('SHOW GLOBAL VARIABLES') && !/information_schema/.test(s));
  return { sql, session, rotate, name, inWindow, cleanup: t.cleanup };
}

describe('the binlog crash recovery needs is frozen with the files', () => {
  const signal = new AbortController().signal;

  for (const version of ['10.11.19-MariaDB', '8.0.36']) {
    const mysql = !version.includes('MariaDB');

    it(`${version}: a binlog started after discovery is listed again inside the window and joins the server space`, async () => {
      const s = rotatingServer(version);
      try {
        const spaces = await s.session.discover(signal);
        expect(spaces.find((sp) => sp.name === 'server')!.chunks.map((c) => c.name)).toContain('#ext/log_bin_basename/mysql-bin.000007');
        s.rotate(); // e.g. `mysqladmin flush-logs` from logrotate, between discovery and the window
        await s.session.checkpoint(signal);
        s.sql.log.length = 0;
        const token = await s.session.block(signal);
        const binlogs = token.spaces!.find((sp) => sp.name === 'server')!.chunks.filter((c) => c.details?.role === 'binlog');
        expect(binlogs.map((c) => [c.name, c.details?.outside])).toEqual([
          ['#ext/log_bin_basename/mysql-bin.000007', true],
          ['#ext/log_bin_basename/mysql-bin.000008', true],
        ]);
        const meta = await s.session.unblock(token);
        expect(meta.logStart).toBe('mysql-bin.000008:157');
        expect(s.inWindow()).toEqual(
          mysql
            ? ['SELECT LOCAL AS local, STORAGE_ENGINES AS engines, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch FROM performance_schema.log_status', 'SHOW MASTER STATUS', 'SHOW BINARY LOGS', 'SELECT CONNECTION_ID() AS id', 'SHOW MASTER STATUS', 'UNLOCK INSTANCE']
            : ['BACKUP STAGE BLOCK_COMMIT', 'FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS', 'SHOW MASTER STATUS', 'SHOW BINARY LOGS', 'SELECT CONNECTION_ID() AS id', 'SHOW MASTER STATUS', 'SELECT @@global.gtid_binlog_pos AS gtid, NOW(6) AS serverTime, UNIX_TIMESTAMP(NOW(6)) AS serverEpoch', 'BACKUP STAGE END', 'SET SESSION max_statement_time = 0'],
        );
      } finally {
        s.cleanup();
      }
    });

    it(`${version}: a binlog rotated inside the window, after the list, fails the backup and drops the connection`, async () => {
      const s = rotatingServer(version);
      try {
        await s.session.discover(signal);
        await s.session.checkpoint(signal);
        const token = await s.session.block(signal);
        expect(token.spaces).toBeUndefined(); // nothing rotated since discovery: one SHOW MASTER STATUS, no new list
        s.rotate(); // FLUSH BINARY LOGS from another session: BLOCK_COMMIT lets it through, LOCK INSTANCE too
        await expect(s.session.unblock(token)).rejects.toThrow(/binlog rotated to mysql-bin\.000008 while storage was frozen/);
        expect(s.sql.destroyed).toBe(true); // the server ends the backup stage / lock by itself
        expect(s.sql.log).not.toContain(mysql ? 'UNLOCK INSTANCE' : 'BACKUP STAGE END');
      } finally {
        s.cleanup();
      }
    });
  }

  it('MySQL 8: a backup needs gtid_mode = ON, since replay starts a little before the snapshot and skips by GTID', async () => {
    const off = rotatingServer('8.0.36', [{ Variable_name: 'gtid_mode', Value: 'OFF' }]);
    const on = rotatingServer('8.0.36', [{ Variable_name: 'gtid_mode', Value: 'ON' }]);
    try {
      await expect(off.session.preflight!(signal)).rejects.toThrow(/gtid_mode is OFF/);
      await expect(on.session.preflight!(signal)).resolves.toBeUndefined();
    } finally {
      off.cleanup();
      on.cleanup();
    }
  });
});

describe('restore checks before anything is written', () => {
  const signal = new AbortController().signal;
  const instance: InstanceContext<MariadbSettings> = { name: 'x', settings: mariadbConfigSchema.parse({ socket: '/nonexistent/sock', user: 'root' }), resolvePath: (p) => p };
  const planOf = (point: Record<string, unknown>, extra: Partial<RestorePlan> = {}): RestorePlan => ({
    backupId: 'b1',
    instance: 'x',
    mode: 'full',
    requested: ['server'],
    spaces: [{ name: 'server', critical: true, kind: 'server', chunks: [] }],
    meta: { details: point },
    ...extra,
  });
  const settings = { datadir: '/nonexistent/data', log_bin: 'ON', log_bin_basename: '/nonexistent/log/mysql-bin', log_bin_index: '/nonexistent/log/mysql-bin.index' };

  it('MySQL 8: --until is refused for a backup taken with gtid_mode OFF (its files hold transactions past the position)', async () => {
    const point = { flavor: 'mysql', version: '8.0.36', settings: { ...settings, gtid_mode: 'OFF' }, file: 'mysql-bin.000007', position: 157, serverTime: 'x', serverEpoch: 1767225600 };
    const r = fullRestorer(instance, planOf(point, { until: new Date(1767225700_000) }), undefined);
    await expect(r.check(signal)).rejects.toThrow(/gtid_mode OFF.*apply them twice/);
  });

  it('a backup without the binlog of its position is refused: crash recovery could not resolve prepared transactions', async () => {
    const point = { flavor: 'mariadb', version: '10.11.19-MariaDB', settings, file: 'mysql-bin.000007', position: 157, serverTime: 'x', serverEpoch: 1767225600 };
    const r = fullRestorer(instance, planOf(point, { targetDir: '/nonexistent/to' }), undefined);
    await expect(r.check(signal)).rejects.toThrow(/does not hold mysql-bin\.000007.*prepared transactions/);
  });

  it('reads the in-use flag of a binlog\'s format description event', async () => {
    const t = tempDir('ebr-mdb-flag-');
    try {
      const file = (flags: number) => {
        const b = Buffer.alloc(4 + 19 + 8);
        Buffer.from([0xfe, 0x62, 0x69, 0x6e]).copy(b);
        b.writeUInt8(15, 4 + 4); // FORMAT_DESCRIPTION_EVENT
        b.writeUInt32LE(19 + 8, 4 + 9);
        b.writeUInt16LE(flags, 4 + 17);
        const p = path.join(t.dir, `b${flags}`);
        writeFileSync(p, b);
        return p;
      };
      expect(await binlogInUseFlag(file(1))).toBe(true);
      expect(await binlogInUseFlag(file(0))).toBe(false);
      writeFileSync(path.join(t.dir, 'enc'), Buffer.from('\xfdbin-encrypted-----------', 'latin1'));
      expect(await binlogInUseFlag(path.join(t.dir, 'enc'))).toBeUndefined();
    } finally {
      t.cleanup();
    }
  });
});
