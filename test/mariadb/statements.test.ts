/**
 * The exact statements each server family gets, checked against a recording connection. No MySQL
 * server runs here, so this is how the MySQL 8 path (LOCK INSTANCE FOR BACKUP + log_status) is tested;
 * the MariaDB path runs the same statements against a real server in the other tests.
 */
import { describe, expect, it } from 'vitest';
import type { Row, Sql } from '../../adapters/mariadb/mariadb-connection.js';
import { binlogSource } from '../../adapters/mariadb/mariadb-binlogs.js';
import { dialectFor, parseVersion } from '../../adapters/mariadb/mariadb-queries.js';
import { mariadbSession } from '../../adapters/mariadb/mariadb-session.js';

function recorder(answers: Array<[RegExp, Row[]]>): Sql & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    threadId: 42,
    closed: false,
    busy: false,
    async query(sql) {
      log.push(sql);
      if (/CONNECTION_ID/.test(sql)) return [{ id: 42 }];
      return answers.find(([re]) => re.test(sql))?.[1] ?? [];
    },
    destroy() {},
    async end() {},
  };
}

const settings = [
  { Variable_name: 'datadir', Value: '/nonexistent/data/' },
  { Variable_name: 'log_bin', Value: 'ON' },
  { Variable_name: 'log_bin_basename', Value: '/nonexistent/data/binlog' },
];

async function window(version: string, comment: string, answers: Array<[RegExp, Row[]]>) {
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
