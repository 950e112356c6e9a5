#!/usr/bin/env node
// A stand-in for the Db2 command line processor, `db2`. With a command in its arguments it runs that
// one command and exits with the CLP's return code (0 done, 2 warning, 4 Db2/SQL error, 8 CLP error);
// without one it is the interactive CLP: it prompts `db2 => `, reads one command per line from stdin,
// and keeps its connection until CONNECT RESET, TERMINATE or the end of stdin — as the CLP's back end
// keeps a connection for its front end. The suspend (SUSPEND_IO) is instance state in the state file
// and outlives the process that set it. Message texts are IBM's (SQL/DB2/DBT messages as documented);
// a CONNECT while writes are suspended waits until they are resumed, as the SET WRITE command warns
// ("subsequent connection attempts might hang"). Every command is recorded with the pid that sent it.
// $EBR_DB2_DOUBLE_FAIL='<command prefix>=<message line>' makes that command answer that error.
import { createInterface } from 'node:readline';
import { db2Timestamp, load, record, save, table } from './state.mjs';

const args = process.argv.slice(2);
const interactive = args.length === 0;
let connected = false;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const norm = (c) => c.trim().replace(/;$/, '').replace(/\s+/g, ' ');

/** Runs one command; returns [output, returnCode]. */
async function run(command) {
  const c = norm(command);
  const up = c.toUpperCase();
  const ok = (what) => [`DB20000I  The ${what} command completed successfully.`, 0];
  const err = (line) => [line, 4];
  const fail = process.env.EBR_DB2_DOUBLE_FAIL;
  if (fail) {
    const [prefix, message] = fail.split('=');
    if (up.startsWith(prefix.toUpperCase())) return err(message);
  }
  let s = load();
  const needsConnection = () => (connected ? undefined : err('SQL1024N  A database connection does not exist.  SQLSTATE=08003'));
  let m;
  if ((m = /^ECHO(?: (.*))?$/i.exec(c))) return [m[1] ?? '', 0];
  if ((m = /^CONNECT TO (\S+)$/i.exec(c))) {
    if (m[1].toUpperCase() !== s.database) return err(`SQL1013N  The database alias name or database name "${m[1].toUpperCase()}" could not be found.  SQLSTATE=42705`);
    if (!s.started) return err('SQL1032N  No start database manager command was issued.  SQLSTATE=57019');
    if (s.denied?.includes('CONNECT')) return err(`SQL1060N  User "${s.authid}" does not have the CONNECT privilege.  SQLSTATE=08004`);
    while (s.suspendIo !== 'NO' && s.suspendedBy !== process.pid) {
      await sleep(100);
      s = load();
    }
    connected = true;
    s.active = true;
    save(s);
    return [['', '   Database Connection Information', '', ` Database server        = ${s.server}`, ` SQL authorization ID   = ${s.authid}`, ` Local database alias   = ${s.database}`, ''].join('\n'), 0];
  }
  if ((m = /^GET (?:DATABASE|DB) (?:CONFIGURATION|CONFIG|CFG) FOR (\S+)$/i.exec(c))) {
    if (m[1].toUpperCase() !== s.database) return err(`SQL1013N  The database alias name or database name "${m[1].toUpperCase()}" could not be found.  SQLSTATE=42705`);
    return [
      [
        '',
        `       Database Configuration for Database ${s.database}`,
        '',
        ' Database configuration release level                    = 0x1500',
        ' Database territory                                      = US',
        ` Rollforward pending                                     = ${s.rollforwardPending ? 'DATABASE' : 'NO'}`,
        ` Database is in write suspend state (SUSPEND_IO)         = ${s.suspendIo}`,
        ` Path to log files                                       = ${s.paths.find((p) => p.type === 'LOGPATH').path}`,
        ` First log archive method                 (LOGARCHMETH1) = ${s.logArchMeth1}`,
        ` Second log archive method                (LOGARCHMETH2) = OFF`,
        '',
      ].join('\n'),
      0,
    ];
  }
  if (/ADMIN_LIST_DB_PATHS/i.test(c)) {
    return needsConnection() ?? [table(['DBPARTITIONNUM', 'TYPE', 'PATH'], s.paths.map((p) => [p.partition, p.type, p.path])), 0];
  }
  if (/MON_GET_TABLESPACE/i.test(c)) {
    return needsConnection() ?? [table(['TBSP_NAME', 'TBSP_ID', 'TBSP_TYPE', 'TBSP_CONTENT_TYPE'], s.tablespaces.map((t) => [t.name, t.id, t.type, t.content])), 0];
  }
  if (/MON_GET_CONTAINER/i.test(c)) {
    return needsConnection() ?? [table(['TBSP_NAME', 'CONTAINER_ID', 'CONTAINER_NAME', 'CONTAINER_TYPE'], s.containers.map((x) => [x.tablespace, x.id, x.name, x.type])), 0];
  }
  if (up === 'FLUSH BUFFERPOOLS ALL') return needsConnection() ?? ['DB20000I  The SQL command completed successfully.', 0];
  if ((m = /^SET WRITE SUSPEND FOR (?:DATABASE|DB)(?: (INCLUDE|EXCLUDE) LOGS)?$/i.exec(c))) {
    const no = needsConnection();
    if (no) return no;
    if (s.suspendIo !== 'NO') return err('SQL1552N  The command failed because the database is currently in the SUSPEND_WRITE state.  SQLSTATE=55039');
    s.suspendIo = 'YES';
    s.suspendedBy = process.pid;
    s.suspendedAt = new Date().toISOString();
    s.includeLogs = (m[1] ?? 'INCLUDE').toUpperCase() === 'INCLUDE';
    save(s);
    return ok('SET WRITE');
  }
  if (/^SET WRITE RESUME FOR (?:DATABASE|DB)$/i.test(c)) {
    const no = needsConnection();
    if (no) return no;
    s.suspendIo = 'NO';
    s.suspendedBy = null;
    s.resumedBy = { pid: process.pid, how: 'SET WRITE RESUME', at: new Date().toISOString() };
    save(s);
    return ok('SET WRITE');
  }
  if ((m = /^RESTART (?:DATABASE|DB) (\S+) WRITE RESUME$/i.exec(c))) {
    if (m[1].toUpperCase() !== s.database) return err(`SQL1013N  The database alias name or database name "${m[1].toUpperCase()}" could not be found.  SQLSTATE=42705`);
    s.suspendIo = 'NO';
    s.suspendedBy = null;
    s.resumedBy = { pid: process.pid, how: 'RESTART WRITE RESUME', at: new Date().toISOString() };
    s.active = true;
    save(s);
    connected = true;
    return ok('RESTART DATABASE');
  }
  if (up === 'LIST ACTIVE DATABASES') {
    if (!s.active) return ['SQL1611W  No data was returned by Database System Monitor.', 2];
    return [['', '                           Active Databases', '', `Database name                              = ${s.database}`, 'Applications connected currently           = 1', `Database path                              = ${s.paths.find((p) => p.type === 'DBPATH').path}`, ''].join('\n'), 0];
  }
  if ((m = /^ROLLFORWARD (?:DATABASE|DB) (\S+) TO (END OF LOGS|\S+ USING LOCAL TIME) AND STOP$/i.exec(c))) {
    if (m[1].toUpperCase() !== s.database) return err(`SQL1013N  The database alias name or database name "${m[1].toUpperCase()}" could not be found.  SQLSTATE=42705`);
    if (!s.rollforwardPending) return err(`SQL1260N  Database "${s.database}" is not in rollforward pending state on node(s) "0".`);
    const to = m[2].toUpperCase() === 'END OF LOGS' ? null : m[2].split(' ')[0];
    if (to && !/^\d{4}-\d\d-\d\d-\d\d\.\d\d\.\d\d(\.\d{1,6})?$/.test(to)) return err('SQL1275N  The stoptime passed to roll-forward must be greater than or equal to the timestamp of the backup.');
    s.rollforwardPending = false;
    s.rolledForward = { to, at: new Date().toISOString() };
    save(s);
    return [
      [
        '',
        '                                 Rollforward Status',
        '',
        ` Input database alias                   = ${s.database}`,
        ' Number of members have returned status = 1',
        '',
        ' Member ID                              = 0',
        ' Rollforward status                     = not pending',
        ' Next log file to be read               =',
        ' Log files processed                    = S0000000.LOG - S0000001.LOG',
        ` Last committed transaction             = ${to ? `${to}.000000` : db2Timestamp()} Local`,
        '',
        'DB20000I  The ROLLFORWARD command completed successfully.',
      ].join('\n'),
      0,
    ];
  }
  if (up === 'CONNECT RESET') {
    connected = false;
    return ['DB20000I  The SQL command completed successfully.', 0];
  }
  if (up === 'TERMINATE') return ok('TERMINATE');
  return err(`DB21034E  The command was processed as an SQL statement because it was not a valid Command Line Processor command.  During SQL processing it returned:\nSQL0104N  An unexpected token "${c.split(' ')[0]}" was found.  SQLSTATE=42601`);
}

if (!interactive) {
  const command = args.join(' ');
  record({ tool: 'db2', mode: 'oneshot', command: norm(command) });
  const [output, rc] = await run(command);
  process.stdout.write(`${output}\n`);
  process.exit(rc);
}

record({ tool: 'db2', mode: 'interactive', command: '' });
const rl = createInterface({ input: process.stdin });
process.stdout.write('db2 => ');
for await (const line of rl) {
  if (!line.trim()) {
    process.stdout.write('db2 => ');
    continue;
  }
  if (!/^ECHO\b/i.test(line.trim())) record({ tool: 'db2', mode: 'interactive', command: norm(line) });
  const [output] = await run(line);
  process.stdout.write(`${output}\n`);
  if (/^TERMINATE$/i.test(norm(line)) || /^QUIT$/i.test(norm(line))) process.exit(0);
  process.stdout.write('db2 => ');
}
// stdin closed (ebr ended or died): the front end ends; a suspend stays, as it is database state.
process.exit(0);
