/** Opening the PostgreSQL backup session (loaded only when an instance is backed up: it loads pg). */
import type { DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { PostgresSettings } from './postgres-config.js';
import { connectError, queryError } from './postgres-errors.js';
import * as q from './postgres-queries.js';
import { postgresSession, type ServerInfo } from './postgres-session.js';

export interface OpenPostgres {
  client: import('pg').Client;
  server: ServerInfo;
  /** The error that ended the session, if the server ended it. */
  lost: () => Error | undefined;
}

export async function connectPostgres(instance: InstanceContext<PostgresSettings>, signal: AbortSignal): Promise<DbmsSession> {
  const o = await openPostgres(instance, signal);
  return postgresSession(o.client, instance, o.server, o.lost);
}

/** One connection with ebr's session settings, the server described and its version checked. */
export async function openPostgres(instance: InstanceContext<PostgresSettings>, signal: AbortSignal): Promise<OpenPostgres> {
    const s = instance.settings;
    const ctx = { instance: instance.name, phase: 'connect' };
    throwIfAborted(signal, ctx);
    const { default: pg } = await import('pg');
    const client = new pg.Client({
      host: s.host,
      port: s.port,
      user: s.user,
      database: s.database,
      ...(s.password !== undefined ? { password: s.password } : {}),
      application_name: `ebr ${instance.name}`,
      connectionTimeoutMillis: s.connectTimeoutMs,
    });
    // The server ending the session must not crash ebr; the next query reports it.
    let lost: Error | undefined;
    client.on('error', (err) => {
      lost = err;
    });
    client.on('end', () => {
      lost ??= new Error('the connection was closed');
    });
    const onAbort = () => void client.end().catch(() => undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
    } catch (err) {
      throw connectError(err, s, ctx);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    let server: ServerInfo;
    try {
      for (const sql of q.sessionSettings) await client.query(sql);
      server = (await client.query<ServerInfo>(q.describeServer)).rows[0]!;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw queryError(err, 'connect', 'cannot read the server settings', ctx);
    }
    if (server.version_num < 150000) {
      await client.end().catch(() => undefined);
      throw new EbrError('connect', `PostgreSQL ${server.version} is too old for ebr: it needs 15 or later (pg_backup_start)`, {
        hint: 'upgrade the server, or back it up with the tools of its version',
        context: ctx,
      });
    }
    return { client, server, lost: () => lost };
}
