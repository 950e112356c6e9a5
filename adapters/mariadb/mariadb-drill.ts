/**
 * The MariaDB/MySQL drill. The restore into the copy already ran crash recovery on a temporary server
 * and replayed the archived binlogs from the backup's position to the end of the archive (as a full
 * restore --to DIR does), then shut it down cleanly. The drill starts the copy once more, the way a
 * DBA would start it (the same temporary-server options: socket only, grant tables skipped), runs
 * CHECK TABLE … EXTENDED on every base table of every schema, and shuts it down again.
 */
import type { DrillCheck, DrillReport, InstanceContext, RestoredCopy } from '../../src/adapter-api.js';
import type { MariadbSettings } from './mariadb-config.js';
import { backupPointOf, restoredLayout, runAsUser, serverOptions } from './mariadb-restore-plan.js';
import { startTempServer } from './mariadb-temp-server.js';
import { findTools } from './mariadb-tools.js';

/** Tables per CHECK TABLE statement: few round trips, and a failure still names its table. */
const batch = 50;

export async function drillMariadb(instance: InstanceContext<MariadbSettings>, copy: RestoredCopy, signal: AbortSignal): Promise<DrillReport> {
  const point = backupPointOf(copy.plan.meta, instance.name);
  const layout = restoredLayout(point, copy.dir);
  const tools = findTools(point.flavor === 'mysql' ? 'mysql' : 'mariadb', instance.settings, instance.name);
  const runAs = runAsUser(copy.plan);
  const started = performance.now();
  const server = await startTempServer(
    { program: tools.server, datadir: layout.datadir, scratch: copy.scratch, ...(runAs ? { runAs } : {}), options: serverOptions(point, layout, instance.settings, true), instance: instance.name, ...(copy.onSpawn ? { onSpawn: copy.onSpawn } : {}) },
    signal,
  );
  const startMs = performance.now() - started;
  const checks: DrillCheck[] = [{ name: 'start', ok: true, detail: `the copy started in ${Math.round(startMs)} ms` }];
  try {
    const sql = await server.connect(signal);
    try {
      const tables = (await sql.query(
        "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('information_schema', 'performance_schema', 'sys') ORDER BY table_schema, table_name",
      )) as Array<{ s: string; t: string }>;
      for (const schema of [...new Set(tables.map((x) => x.s))]) {
        const names = tables.filter((x) => x.s === schema).map((x) => `\`${schema.replace(/`/g, '``')}\`.\`${x.t.replace(/`/g, '``')}\``);
        const problems: string[] = [];
        for (let i = 0; i < names.length; i += batch) {
          const rows = (await sql.query(`CHECK TABLE ${names.slice(i, i + batch).join(', ')} EXTENDED`)) as Array<{ Table: string; Msg_type: string; Msg_text: string }>;
          for (const r of rows) {
            // A note ("doesn't support check") is no damage; an error, or a status other than OK, is.
            if (r.Msg_type === 'error' || (r.Msg_type === 'status' && r.Msg_text !== 'OK')) problems.push(`${r.Table}: ${r.Msg_type}: ${r.Msg_text}`);
          }
        }
        checks.push({ name: `CHECK TABLE … EXTENDED on ${names.length} table(s) of ${schema}`, ok: problems.length === 0, detail: problems.length === 0 ? 'OK' : problems.slice(0, 20).join('\n') });
      }
    } finally {
      await sql.end();
    }
  } catch (err) {
    await server.kill();
    throw err;
  }
  await server.stop();
  checks.push({ name: 'shutdown', ok: true, detail: 'the copy shut down cleanly' });
  const details = copy.restored.details ?? {};
  const replayed = Array.isArray(details.replayed) ? (details.replayed as string[]) : [];
  return {
    checks,
    // Recovery and binlog replay ran inside the restore's finish; its replay time is what recovery cost.
    ...(typeof details.replayMs === 'number' ? { recoverMs: details.replayMs } : {}),
    logApplied: {
      count: replayed.length,
      ...(replayed.length ? { first: replayed[0], last: replayed.at(-1) } : {}),
      ...(typeof details.gtid === 'string' && details.gtid ? { endedAt: `GTID ${details.gtid}` } : {}),
    },
    notes: [
      replayed.length
        ? `the restore replayed ${replayed.length} archived binlog(s) to the end of the archive before the checks`
        : 'no archived binlog past the backup\'s position was replayed (the archive ends at the backup, or holds none)',
    ],
  };
}
