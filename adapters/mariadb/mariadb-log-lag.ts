/**
 * How far the binlog archive is behind the server, for `ebr status`: the binlog the server writes now
 * (the last of SHOW BINARY LOGS) and how many closed ones the archive does not hold yet.
 */
import type { InstanceContext, LogLag } from '../../src/adapter-api.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { MariadbSettings } from './mariadb-config.js';
import { connectOptionsOf, openSql } from './mariadb-connection.js';
import { binlogNumber } from './mariadb-layout.js';

export async function mariadbLogLag(instance: InstanceContext<MariadbSettings>, store: LogStore, signal: AbortSignal): Promise<LogLag> {
  const sql = await openSql({ ...connectOptionsOf(instance.settings, instance.resolvePath), connectTimeoutMs: 5000 }, { instance: instance.name, phase: 'status' }, signal);
  let onServer: string[];
  try {
    onServer = (await sql.query('SHOW BINARY LOGS')).map((r) => String(r.Log_name));
  } finally {
    await sql.end();
  }
  const current = onServer.at(-1) ?? '(binary log off)';
  const archived = new Set((await store.list()).map((e) => e.name));
  const newest = [...archived].filter((n) => binlogNumber(n) !== undefined).sort((a, b) => binlogNumber(a)! - binlogNumber(b)!).at(-1);
  return {
    current,
    ...(newest ? { newestArchived: newest } : {}),
    behind: onServer.slice(0, -1).filter((n) => !archived.has(n)).length,
  };
}
