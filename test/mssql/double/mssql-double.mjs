/**
 * A stand-in for SQL Server 2022 behind the slice of the mssql driver's API that ebr uses
 * (ConnectionPool, connect, request().on('info'), request().query, pool.on('error'), close). It answers
 * only the statements ebr is documented to send — anything else is Msg 102, so a drifting statement
 * fails the tests — and keeps the server in a JSON state file ($EBR_MSSQL_DOUBLE_STATE): databases
 * whose data files are text files of lines, suspend flags, msdb.dbo.backupset, a log of every write
 * with its LSN. BACKUP … METADATA_ONLY writes a .bkm, BACKUP LOG a .trn (JSON), and RESTORE replays
 * them. Every statement is appended to the state's statementLog as a JSON line.
 */
import { EventEmitter } from 'node:events';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const stateFile = () => {
  const f = process.env.EBR_MSSQL_DOUBLE_STATE;
  if (!f) throw new Error('EBR_MSSQL_DOUBLE_STATE is not set');
  return f;
};
const load = () => JSON.parse(readFileSync(stateFile(), 'utf8'));
const save = (s) => writeFileSync(stateFile(), JSON.stringify(s, null, 2));

export class ConnectionError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'ConnectionError';
    this.code = code;
  }
}
export class RequestError extends Error {
  constructor(message, number, cls = 16) {
    super(message);
    this.name = 'RequestError';
    this.code = 'EREQUEST';
    this.number = number;
    this.class = cls;
  }
}

const str = `N'((?:[^']|'')*)'`;
const unq = (s) => s.replace(/''/g, "'");
const names = (text) => [...text.matchAll(/\[((?:[^\]]|\]\])*)\]/g)].map((m) => m[1].replace(/\]\]/g, ']'));
const lits = (text) => [...text.matchAll(new RegExp(str, 'g'))].map((m) => unq(m[1]));
const syntax = (sql) => new RequestError(`Incorrect syntax near '${sql.split(/\s+/).slice(0, 2).join(' ')}'.`, 102, 15);
const dbOf = (s, name) => {
  const db = s.databases[name];
  if (!db) throw new RequestError(`Database '${name}' does not exist. Make sure that the name is entered correctly.`, 911);
  return db;
};
const can = (login, what) => login.sysadmin || (what === 'suspend' ? login.alterAnyDatabase && login.backup : login.backup);
const lsnCols = (b) => ({
  database_name: b.database_name,
  first_lsn: String(b.first_lsn),
  last_lsn: String(b.last_lsn),
  checkpoint_lsn: String(b.checkpoint_lsn),
  database_backup_lsn: String(b.database_backup_lsn),
  backup_start_date: new Date(b.backup_start_date),
  backup_finish_date: new Date(b.backup_finish_date),
});

/** One statement against the state; returns { recordsets, infos }. */
function execute(s, session, sql) {
  const login = s.logins[session.user];
  const ok = (recordsets = [], infos = []) => ({ recordsets, infos });
  let m;
  if (/^SELECT @@SPID AS spid, @@SERVERNAME AS serverName, CAST\(SERVERPROPERTY\('ProductVersion'\) AS nvarchar\(128\)\) AS productVersion, CAST\(SERVERPROPERTY\('ProductMajorVersion'\) AS int\) AS major, CAST\(SERVERPROPERTY\('Edition'\) AS nvarchar\(128\)\) AS edition$/.test(sql)) {
    return ok([[{ spid: session.spid, serverName: 'MSSQLDOUBLE', productVersion: s.productVersion ?? '16.0.4135.4', major: Number((s.productVersion ?? '16').split('.')[0]), edition: 'Developer Edition (64-bit)' }]]);
  }
  if ((m = /^SELECT d\.name, d\.state_desc, d\.recovery_model_desc, HAS_PERMS_BY_NAME\(d\.name, 'DATABASE', 'BACKUP DATABASE'\) AS canBackup, HAS_PERMS_BY_NAME\(d\.name, 'DATABASE', 'BACKUP LOG'\) AS canBackupLog, HAS_PERMS_BY_NAME\(NULL, NULL, 'ALTER ANY DATABASE'\) AS alterAnyDatabase, IS_SRVROLEMEMBER\('sysadmin'\) AS sysadmin FROM sys\.databases AS d WHERE d\.name IN \((.+)\) ORDER BY d\.name$/.exec(sql))) {
    const rows = lits(m[1]).filter((n) => s.databases[n]).sort().map((n) => ({
      name: n, state_desc: s.databases[n].state, recovery_model_desc: s.databases[n].recovery,
      canBackup: login.sysadmin || login.backup ? 1 : 0, canBackupLog: login.sysadmin || login.backup ? 1 : 0, alterAnyDatabase: login.sysadmin || login.alterAnyDatabase ? 1 : 0, sysadmin: login.sysadmin ? 1 : 0,
    }));
    return ok([rows]);
  }
  if ((m = /^SELECT f\.file_id, f\.type_desc, f\.name, f\.physical_name, f\.state_desc, f\.size, fg\.name AS filegroup_name, fg\.type_desc AS filegroup_type FROM (\[.+\])\.sys\.database_files AS f LEFT JOIN (\[.+\])\.sys\.filegroups AS fg ON fg\.data_space_id = f\.data_space_id ORDER BY f\.file_id$/.exec(sql)) && m[1] === m[2]) {
    const db = dbOf(s, names(m[1])[0]);
    return ok([db.files.map((f) => {
      const fg = db.filegroups.find((g) => g.data_space_id === f.data_space_id);
      return { file_id: f.file_id, type_desc: f.type_desc, name: f.name, physical_name: f.physical_name, state_desc: f.state ?? 'ONLINE', size: 8, filegroup_name: fg?.name ?? null, filegroup_type: fg ? 'ROWS_FILEGROUP' : null };
    })]);
  }
  if ((m = /^EXEC (\[.+\])\.sys\.sp_executesql N'CHECKPOINT'$/.exec(sql))) {
    dbOf(s, names(m[1])[0]);
    return ok();
  }
  if ((m = /^ALTER DATABASE (\[.+\]) SET SUSPEND_FOR_SNAPSHOT_BACKUP = (ON|OFF)$/.exec(sql)) || (m = /^ALTER SERVER CONFIGURATION SET SUSPEND_FOR_SNAPSHOT_BACKUP = (ON) \(GROUP = \((.+)\)\)$/.exec(sql)) || (m = /^ALTER SERVER CONFIGURATION SET SUSPEND_FOR_SNAPSHOT_BACKUP = (OFF)$/.exec(sql))) {
    const server = sql.startsWith('ALTER SERVER');
    const on = server ? m[1] === 'ON' : m[2] === 'ON';
    const list = server ? (on ? names(m[2]) : Object.keys(s.databases).filter((n) => s.databases[n].suspendedBy === session.spid)) : names(m[1]);
    if (!can(login, 'suspend')) throw new RequestError(`User does not have permission to alter database '${list[0]}', the database does not exist, or the database is not in a state that allows access checks.`, 5011, 14);
    if (on && list.some((n) => ['master', 'model', 'msdb', 'tempdb'].includes(n))) throw new RequestError('SUSPEND_FOR_SNAPSHOT_BACKUP is not supported for system databases.', 3081);
    if (on && list.length > 64) throw new RequestError('The number of databases in the group exceeds the limit of 64.', 925);
    for (const n of list) {
      const db = dbOf(s, n);
      if (on && db.suspendedBy) throw new RequestError(`Database '${n}' is already suspended for snapshot backup.`, 3082);
      db.suspendedBy = on ? session.spid : null;
    }
    return ok();
  }
  if ((m = /^SELECT CAST\(SERVERPROPERTY\('SuspendedDatabaseCount'\) AS int\) AS suspendedCount, (.+)$/.exec(sql))) {
    const row = { suspendedCount: Object.values(s.databases).filter((d) => d.suspendedBy).length };
    const parts = m[1].split(/, (?=CAST)/);
    parts.forEach((p, i) => {
      const pm = new RegExp(`^CAST\\(DATABASEPROPERTYEX\\(${str}, 'IsDatabaseSuspendedForSnapshotBackup'\\) AS int\\) AS s${i}$`).exec(p);
      if (!pm) throw syntax(p);
      row[`s${i}`] = s.databases[unq(pm[1])]?.suspendedBy ? 1 : 0;
    });
    return ok([[row]]);
  }
  if ((m = new RegExp(`^BACKUP (DATABASE (\\[.+\\])|GROUP ((?:\\[.+?\\](?:, )?)+)) TO DISK = ${str} WITH METADATA_ONLY, FORMAT, MEDIANAME = ${str}, MEDIADESCRIPTION = ${str}$`).exec(sql))) {
    const list = names(m[2] ?? m[3]);
    const file = unq(m[4]);
    if (!can(login, 'backup')) throw new RequestError(`BACKUP DATABASE permission denied in database '${list[0]}'.`, 262, 14);
    for (const n of list) {
      if (dbOf(s, n).suspendedBy !== session.spid) throw new RequestError(`Database '${n}' is not suspended for snapshot backup by this session. BACKUP DATABASE is terminating abnormally.`, 3013);
    }
    const bkm = { format: 'mssql-double-bkm', databases: {} };
    const now = Date.now();
    for (const n of list) {
      const db = s.databases[n];
      const first = s.lsn;
      s.lsn += 1;
      db.logChainLsn ??= first;
      const row = { backup_set_id: s.backupset.length + 1, type: 'D', is_snapshot: 1, database_name: n, first_lsn: first, last_lsn: s.lsn, checkpoint_lsn: first, database_backup_lsn: db.lastFullLsn ?? 0, backup_start_date: now, backup_finish_date: now, physical_device_name: file };
      db.lastFullLsn = first;
      s.backupset.push(row);
      bkm.databases[n] = { firstLsn: first, lastLsn: s.lsn, files: db.files.map((f) => ({ file_id: f.file_id, name: f.name, type_desc: f.type_desc, data_space_id: f.data_space_id, physical_name: f.physical_name })), filegroups: db.filegroups };
      db.suspendedBy = null;
    }
    writeFileSync(file, JSON.stringify(bkm));
    return ok([], list.map((n) => ({ number: 3014, class: 0, message: `BACKUP DATABASE successfully processed 0 pages in 0.001 seconds (0.000 MB/sec). (${n})` })));
  }
  if ((m = new RegExp(`^SELECT database_name, CAST\\(first_lsn AS varchar\\(30\\)\\) AS first_lsn, CAST\\(last_lsn AS varchar\\(30\\)\\) AS last_lsn, CAST\\(checkpoint_lsn AS varchar\\(30\\)\\) AS checkpoint_lsn, CAST\\(database_backup_lsn AS varchar\\(30\\)\\) AS database_backup_lsn, backup_start_date, backup_finish_date FROM msdb\\.dbo\\.backupset WHERE (.+)$`).exec(sql))) {
    let w;
    if ((w = /^backup_set_id IN \(SELECT MAX\(backup_set_id\) FROM msdb\.dbo\.backupset WHERE type = 'D' AND database_name IN \((.+)\) GROUP BY database_name\) ORDER BY database_name$/.exec(m[1]))) {
      const want = lits(w[1]);
      const rows = want.map((n) => s.backupset.filter((b) => b.type === 'D' && b.database_name === n).at(-1)).filter(Boolean).sort((a, b) => a.database_name.localeCompare(b.database_name));
      return ok([rows.map(lsnCols)]);
    }
    throw syntax(sql);
  }
  if ((m = new RegExp(`^SELECT TOP \\(1\\) database_name, .* FROM msdb\\.dbo\\.backupset WHERE type = 'L' AND database_name = ${str} ORDER BY backup_set_id DESC$`).exec(sql))) {
    const row = s.backupset.filter((b) => b.type === 'L' && b.database_name === unq(m[1])).at(-1);
    return ok([row ? [lsnCols(row)] : []]);
  }
  if ((m = new RegExp(`^BACKUP LOG (\\[.+\\]) TO DISK = ${str} WITH FORMAT, MEDIANAME = ${str}$`).exec(sql))) {
    const n = names(m[1])[0];
    const db = dbOf(s, n);
    if (!can(login, 'backup')) throw new RequestError(`BACKUP LOG permission denied in database '${n}'.`, 262, 14);
    if (db.recovery !== 'FULL') throw new RequestError(`The statement BACKUP LOG is not allowed while the recovery model is SIMPLE.`, 4208);
    if (db.logChainLsn == null) throw new RequestError(`BACKUP LOG cannot be performed because there is no current database backup.`, 4214);
    const first = db.logChainLsn;
    s.lsn += 1;
    const records = db.log.filter((r) => r.lsn > first && r.lsn <= s.lsn);
    const now = Date.now();
    writeFileSync(unq(m[2]), JSON.stringify({ format: 'mssql-double-trn', database: n, firstLsn: first, lastLsn: s.lsn, records }));
    s.backupset.push({ backup_set_id: s.backupset.length + 1, type: 'L', is_snapshot: 0, database_name: n, first_lsn: first, last_lsn: s.lsn, checkpoint_lsn: db.lastFullLsn, database_backup_lsn: db.lastFullLsn, backup_start_date: now, backup_finish_date: now });
    db.logChainLsn = s.lsn;
    return ok([], [{ number: 4035, class: 0, message: `Processed ${records.length} pages for database '${n}'.` }]);
  }
  if ((m = new RegExp(`^IF DB_ID\\(${str}\\) IS NOT NULL ALTER DATABASE (\\[.+\\]) SET OFFLINE WITH ROLLBACK IMMEDIATE$`).exec(sql)) && names(m[2])[0] === unq(m[1])) {
    const db = s.databases[unq(m[1])];
    if (db) {
      if (!login.sysadmin) throw new RequestError(`User does not have permission to alter database '${unq(m[1])}'.`, 5011, 14);
      db.state = 'OFFLINE';
    }
    return ok();
  }
  // ALTER DATABASE SET ONLINE (https://learn.microsoft.com/sql/t-sql/statements/alter-database-transact-sql-set-options): an offline database comes back as it was.
  if ((m = new RegExp(`^IF DB_ID\\(${str}\\) IS NOT NULL ALTER DATABASE (\\[.+\\]) SET ONLINE$`).exec(sql)) && names(m[2])[0] === unq(m[1])) {
    const db = s.databases[unq(m[1])];
    if (db) {
      if (!login.sysadmin) throw new RequestError(`User does not have permission to alter database '${unq(m[1])}'.`, 5011, 14);
      if (db.state === 'RESTORING') throw new RequestError(`Database '${unq(m[1])}' cannot be opened. It is in the middle of a restore.`, 927, 14);
      db.state = 'ONLINE';
    }
    return ok();
  }
  if ((m = new RegExp(`^RESTORE DATABASE (\\[.+?\\])((?: FILEGROUP = ${str},?)*) FROM DISK = ${str} WITH (.+)$`).exec(sql))) return restoreDatabase(s, login, m, sql, ok);
  if ((m = new RegExp(`^RESTORE LOG (\\[.+\\]) FROM DISK = ${str} WITH (?:STOPAT = ${str}, )?(NORECOVERY|RECOVERY)$`).exec(sql))) {
    const n = names(m[1])[0];
    const db = dbOf(s, n);
    if (db.state !== 'RESTORING') throw new RequestError(`The log or differential backup cannot be restored because no files are ready to rollforward.`, 3117);
    const trn = JSON.parse(readFileSync(unq(m[2]), 'utf8'));
    if (trn.database !== n) throw new RequestError(`The backup set holds a backup of a database other than the existing '${n}' database.`, 3154);
    if (!(trn.firstLsn <= db.restoreLsn && db.restoreLsn < trn.lastLsn)) throw new RequestError(`The log in this backup set begins at LSN ${trn.firstLsn}, which is too recent to apply to the database (restored to ${db.restoreLsn}).`, 4305);
    const stopAt = m[3] ? new Date(`${unq(m[3])}Z`).getTime() : Infinity;
    let stopped = false;
    for (const r of trn.records) {
      if (r.lsn <= db.restoreLsn) continue;
      if (r.time > stopAt) { stopped = true; break; }
      const f = db.files.find((x) => x.file_id === r.file_id);
      if (f && f.state !== 'RECOVERY_PENDING') appendFileSync(f.physical_name, `${r.text}\n`);
      db.restoreLsn = r.lsn;
    }
    if (!stopped) db.restoreLsn = trn.lastLsn;
    if (m[4] === 'RECOVERY') db.state = 'ONLINE';
    return ok([], [{ number: 4035, class: 0, message: `Processed pages for database '${n}'.` }]);
  }
  if ((m = /^RESTORE DATABASE (\[.+\]) WITH RECOVERY$/.exec(sql))) {
    const db = dbOf(s, names(m[1])[0]);
    if (db.state !== 'RESTORING') throw new RequestError('The database cannot be recovered because the log was not restored.', 4333);
    db.state = 'ONLINE';
    return ok();
  }
  throw syntax(sql);
}

function restoreDatabase(s, login, m, sql, ok) {
  const n = names(m[1])[0];
  const filegroups = lits(m[2] ?? '');
  const file = unq(m[4]);
  const opts = m[5];
  const tok = new RegExp(`METADATA_ONLY|DBNAME = ${str}|PARTIAL|REPLACE|MOVE ${str} TO ${str}|NORECOVERY|RECOVERY`, 'g');
  const parsed = [...opts.matchAll(tok)];
  if (parsed.map((t) => t[0]).join(', ') !== opts || parsed[0]?.[0] !== 'METADATA_ONLY') throw syntax(sql);
  const dbname = parsed.find((t) => t[0].startsWith('DBNAME'))?.[1];
  const partial = parsed.some((t) => t[0] === 'PARTIAL');
  const replace = parsed.some((t) => t[0] === 'REPLACE');
  const recovery = parsed.some((t) => t[0] === 'RECOVERY');
  const moves = new Map(parsed.filter((t) => t[0].startsWith('MOVE')).map((t) => [unq(t[2]), unq(t[3])]));
  if (!login.sysadmin) throw new RequestError(`CREATE DATABASE permission denied in database 'master'. RESTORE DATABASE is terminating abnormally.`, 262, 14);
  if (!existsSync(file)) throw new RequestError(`Cannot open backup device '${file}'. Operating system error 2(The system cannot find the file specified.).`, 3201);
  const bkm = JSON.parse(readFileSync(file, 'utf8'));
  const keys = Object.keys(bkm.databases);
  if (keys.length > 1 && !dbname) throw new RequestError('The backup set holds several databases; DBNAME is required.', 3254);
  const src = bkm.databases[dbname ? unq(dbname) : keys[0]];
  if (!src || (dbname && unq(dbname) !== n)) throw new RequestError(`The backup set holds a backup of a database other than '${n}'.`, 3154);
  if (filegroups.length && (!partial || filegroups[0] !== 'PRIMARY')) throw new RequestError('A partial restore sequence must begin with the PRIMARY filegroup and PARTIAL.', 3034);
  const existing = s.databases[n];
  if (existing && existing.state === 'ONLINE') throw new RequestError('Exclusive access could not be obtained because the database is in use.', 3101);
  if (existing && !replace) throw new RequestError(`The tail of the log for the database '${n}' has not been backed up.`, 3159);
  const fgIds = new Set(src.filegroups.filter((g) => !filegroups.length || filegroups.includes(g.name)).map((g) => g.data_space_id));
  const files = src.files.map((f) => {
    const restored = f.type_desc === 'LOG' || fgIds.has(f.data_space_id);
    const physical = moves.get(f.name) ?? f.physical_name;
    if (restored) {
      if (!existsSync(physical)) throw new RequestError(`Unable to open the physical file "${physical}". Operating system error 2.`, 5120);
      const header = readFileSync(physical, 'utf8').split('\n')[0];
      if (header !== `MSSQL-DOUBLE ${n} file ${f.file_id}`) throw new RequestError(`The header for file '${physical}' is not a valid database file header.`, 5172);
    }
    return { ...f, physical_name: physical, ...(restored ? {} : { state: 'RECOVERY_PENDING' }) };
  });
  for (const g of moves.keys()) if (!src.files.some((f) => f.name === g)) throw new RequestError(`Logical file '${g}' is not part of database '${n}'.`, 3234);
  s.databases[n] = { ...(existing ?? { recovery: 'FULL', log: [] }), files, filegroups: src.filegroups, state: recovery ? 'ONLINE' : 'RESTORING', restoreLsn: src.lastLsn, suspendedBy: null };
  return ok([], [{ number: 3014, class: 0, message: `RESTORE DATABASE successfully processed 0 pages (${n}).` }]);
}

let nextPool = 0;
export class ConnectionPool extends EventEmitter {
  constructor(config) {
    super();
    this.config = config;
    this.id = ++nextPool;
  }
  async connect() {
    const s = load();
    const where = `${this.config.server}:${this.config.port}`;
    if (this.config.server !== s.host || this.config.port !== s.port) throw new ConnectionError(`Failed to connect to ${where} - connect ECONNREFUSED ${where}`, 'ESOCKET');
    const login = s.logins[this.config.user];
    if (!login || login.password !== this.config.password) throw new ConnectionError(`Login failed for user '${this.config.user}'.`, 'ELOGIN');
    this.session = { spid: s.nextSpid++, user: this.config.user };
    save(s);
    return this;
  }
  request() {
    const pool = this;
    const req = new EventEmitter();
    req.query = async (sql) => {
      if (!pool.session) throw new ConnectionError('Connection is closed.', 'ECONNCLOSED');
      const s = load();
      if (pool.session.dead) pool.session = { spid: s.nextSpid++, user: pool.session.user }; // the pool reconnects
      appendFileSync(s.statementLog, `${JSON.stringify({ spid: pool.session.spid, sql })}\n`);
      const faults = s.faults ?? {};
      let result;
      try {
        if (faults.failOn && sql.includes(faults.failOn.match)) throw new RequestError(faults.failOn.message, faults.failOn.number);
        if (faults.infoErrorOn && sql.includes(faults.infoErrorOn)) {
          result = { recordsets: [], infos: [{ number: 3202, class: 16, message: `Write on "backup device" failed: 112(There is not enough space on the disk.)` }, { number: 3013, class: 16, message: 'BACKUP DATABASE is terminating abnormally.' }] };
        } else {
          result = execute(s, pool.session, sql);
        }
      } finally {
        save(s);
      }
      for (const info of result.infos) req.emit('info', { ...info, state: 1, lineNumber: 1, serverName: 'MSSQLDOUBLE', procName: '' });
      if (faults.dropSessionAfter && sql.includes(faults.dropSessionAfter)) {
        // The server ends the session: its freeze ends with it.
        const t = load();
        for (const db of Object.values(t.databases)) if (db.suspendedBy === pool.session.spid) db.suspendedBy = null;
        t.faults = { ...t.faults, dropSessionAfter: undefined };
        save(t);
        pool.session.dead = true;
        pool.emit('error', new ConnectionError('Connection lost - read ECONNRESET', 'ESOCKET'));
      }
      return { recordsets: result.recordsets, recordset: result.recordsets[0], rowsAffected: result.recordsets.map((r) => r.length), output: {} };
    };
    return req;
  }
  async close() {
    if (this.session && !this.session.dead) {
      // The server ends the freeze of a session that closes.
      const s = load();
      for (const db of Object.values(s.databases)) if (db.suspendedBy === this.session.spid) db.suspendedBy = null;
      save(s);
    }
    this.session = undefined;
  }
}

export default { ConnectionPool, ConnectionError, RequestError };
