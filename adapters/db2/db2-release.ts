/**
 * Ending a suspend that a dead ebr left (run by `ebr release`, the watchdog's release command and the
 * next command's repair). It never connects first: while writes are suspended "subsequent connection
 * attempts might hang" (SET WRITE command). It reads SUSPEND_IO from the database configuration
 * (GET DATABASE CONFIGURATION needs no connection) and, if the database is suspended, runs
 * `RESTART DATABASE <db> WRITE RESUME`, which resumes I/O without the connection that suspended it.
 */
import type { InstanceContext } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { parseConfig, runTool } from './db2-clp.js';
import type { Db2Settings } from './db2-config.js';
import { argv } from './db2-queries.js';

export async function suspendState(s: Db2Settings, context: Record<string, unknown>, signal: AbortSignal): Promise<string> {
  const r = await runTool(s, argv.dbConfig(s), { code: 'block', what: `cannot read the configuration of ${s.database}`, context, signal });
  return parseConfig(r.output).get('SUSPEND_IO') ?? 'NO';
}

export async function endSuspend(instance: InstanceContext<Db2Settings>, signal: AbortSignal): Promise<'ended' | 'none'> {
  const s = instance.settings;
  const ctx = { instance: instance.name, phase: 'release', host: `${s.instance}/${s.database}` };
  if ((await suspendState(s, ctx, signal)) === 'NO') return 'none';
  // RESTART answers DB20000I, or a warning (exit 2) such as in-doubt transactions; exit 4 and above are errors.
  await runTool(s, argv.restartWriteResume(s), { code: 'block', what: `cannot resume writes to ${s.database}`, context: ctx, signal });
  const after = await suspendState(s, ctx, signal);
  if (after !== 'NO') {
    throw new EbrError('block', `after RESTART DATABASE ${s.database} WRITE RESUME the database is still write suspended (SUSPEND_IO = ${after})`, {
      hint: `as the instance owner: db2 RESTART DATABASE ${s.database} WRITE RESUME; see db2diag.log`,
      context: ctx,
    });
  }
  return 'ended';
}
