/**
 * Is a server using these files? Three independent signs, any one of which refuses the restore: the
 * configured server answers, the recorded pid file names a live server process, or some process holds
 * one of the files open.
 */
import { readFile } from 'node:fs/promises';
import type { InstanceContext } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { processesHolding } from '../../src/util/open-files.js';
import { connectOptionsOf, openSql } from './mariadb-connection.js';
import type { MariadbSettings } from './mariadb-config.js';

export async function assertNotInUse(instance: InstanceContext<MariadbSettings>, files: string[], pidFile: string | undefined, checkConnect: boolean): Promise<void> {
  const ctx = { instance: instance.name, phase: 'restore' };
  if (checkConnect) {
    const sql = await openSql({ ...connectOptionsOf(instance.settings, instance.resolvePath), connectTimeoutMs: 3000 }, ctx).catch(() => undefined);
    if (sql) {
      await sql.end();
      throw new EbrError('inUse', `the server of instance ${instance.name} is running (it answered on ${instance.settings.socket ?? `${instance.settings.host}:${instance.settings.port}`})`, {
        hint: 'stop the server before a full restore into its own data directory (systemctl stop mariadb), restore with --to DIR, or restore one schema into the running server with --partial',
        context: ctx,
      });
    }
  }
  if (pidFile) {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (/mariadbd|mysqld/.test(cmd)) {
        throw new EbrError('inUse', `a server process (pid ${pid}, from ${pidFile}) is running on the data directory`, {
          hint: 'stop that server first, or restore with --to DIR',
          context: { ...ctx, path: pidFile },
        });
      }
    }
  }
  const holders = processesHolding(files);
  if (holders.length > 0) {
    const list = holders.slice(0, 5).map((h) => `pid ${h.pid} (${h.command}) has ${h.path} open`).join('; ');
    throw new EbrError('inUse', `the files to be restored are in use: ${list}`, {
      hint: 'stop the programs that use them before restoring over them, or restore with --to DIR',
      context: { ...ctx, path: holders[0]!.path },
    });
  }
}
