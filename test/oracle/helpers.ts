/** In-process plumbing for the Oracle tests: the adapter against the stand-in, with a log store in a temp dir. */
import path from 'node:path';
import type { InstanceContext } from '../../src/adapter-api.js';
import { logStoreAt } from '../../src/logs/log-store.js';
import { oracleConfigSchema, type OracleSettings } from '../../adapters/oracle/oracle-config.js';
import type { OracleDouble } from './double/index.js';

/** Points this process at the stand-in (the driver reads its state file on every call). */
export function useDouble(d: OracleDouble): void {
  Object.assign(process.env, d.env);
}

export function instanceOf(d: OracleDouble, settings: Partial<OracleSettings> = {}, o: { logStore?: boolean } = {}): InstanceContext<OracleSettings> {
  const parsed = oracleConfigSchema.parse({
    connectString: d.state().connectString,
    user: 'ebr',
    password: d.password,
    privilege: 'SYSBACKUP',
    sqlplus: path.join(path.dirname(new URL(import.meta.url).pathname), 'double', 'sqlplus-double.mjs'),
    oracleSid: 'orcl',
    controlFileDir: path.join(d.dir, 'ctlbkp'),
    scratchDir: path.join(d.dir, 'scratch'),
    ...settings,
  });
  const store = logStoreAt(path.join(d.dir, 'logs', 'redo'), 'orcl');
  return {
    name: 'orcl',
    settings: parsed,
    resolvePath: (p) => path.resolve(d.dir, p),
    ...(o.logStore === false ? {} : { logStore: () => store }),
    ebrArgv: (args) => ['/usr/bin/node', '/opt/ebr/main.js', '--config', '/etc/ebr.yaml', ...args],
  };
}

export const never = new AbortController().signal;
