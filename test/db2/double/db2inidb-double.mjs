#!/usr/bin/env node
// A stand-in for `db2inidb <database_alias> AS SNAPSHOT | STANDBY | MIRROR [RELOCATE USING configFile]`
// (db2inidb command reference): no connection is needed; it refuses a database that is active or whose
// database directory is missing, puts MIRROR and STANDBY in roll-forward pending, and answers DBT1000I.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { load, record, save } from './state.mjs';

const args = process.argv.slice(2);
record({ tool: 'db2inidb', mode: 'oneshot', command: args.join(' ') });
const s = load();
const [alias, as, mode, ...rest] = args;
const out = (t) => process.stdout.write(`${t}\n`);
if (!alias || (as ?? '').toUpperCase() !== 'AS' || !['SNAPSHOT', 'STANDBY', 'MIRROR'].includes((mode ?? '').toUpperCase()) || (rest.length && rest.join(' ').toUpperCase().indexOf('RELOCATE USING') !== 0)) {
  out('Usage: db2inidb <database_alias> AS < SNAPSHOT | STANDBY | ACS STANDBY | MIRROR > [RELOCATE USING <configFile>]');
  process.exit(8);
}
if (alias.toUpperCase() !== s.database) {
  out(`SQL1013N  The database alias name or database name "${alias.toUpperCase()}" could not be found.  SQLSTATE=42705`);
  process.exit(4);
}
if (s.active) {
  out(`SQL1035N  The operation failed because the specified database cannot be connected to in the mode requested.  SQLSTATE=57019`);
  process.exit(4);
}
const dbpath = s.paths.find((p) => p.type === 'DBPATH').path;
if (!existsSync(path.join(dbpath, 'SQLDBCONF'))) {
  out(`SQL1036C  An I/O error occurred while accessing the database.  SQLSTATE=58030`);
  process.exit(4);
}
const m = mode.toUpperCase();
s.initializedAs = m;
s.rollforwardPending = m !== 'SNAPSHOT';
s.suspendIo = 'NO';
save(s);
out('DBT1000I  The tool completed successfully.');
process.exit(0);
