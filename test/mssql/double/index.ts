/**
 * Starts the SQL Server stand-in for a test: a state file, data files in a temp dir, the environment
 * that makes ebr load the stand-in instead of the mssql driver, and the instance lines of an ebr.yaml.
 * Written for reuse by suites beyond test/mssql (an adapter contract kit).
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const doublePath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'mssql-double.mjs');

export interface DoubleOptions {
  /** Databases and their extra filegroups (PRIMARY and the log are always there). */
  databases?: Record<string, { filegroups?: string[]; recovery?: 'FULL' | 'SIMPLE' }>;
  /** Which databases ebr backs up (default: all of them). */
  backup?: string[];
  login?: { sysadmin?: boolean; alterAnyDatabase?: boolean; backup?: boolean };
  port?: number;
}

export interface MssqlDouble {
  env: Record<string, string>;
  /** The instance's keys in an ebr.yaml, indented for `instances.<name>:`. */
  instanceYaml: string[];
  stateFile: string;
  dataDir: string;
  backupDir: string;
  statements(): string[];
  /** Statements with the session (spid) that sent them. */
  sent(): Array<{ spid: number; sql: string }>;
  clearStatements(): void;
  state(): DoubleState;
  update(f: (s: DoubleState) => void): void;
  /** A write by an application: a line in a data file of the database, with its LSN in the log. */
  write(db: string, text: string, filegroup?: string): void;
  /** The lines of a database's data files (without their header), per filegroup, read where the server has them now. */
  rows(db: string, filegroup?: string): string[];
  cleanup(): void;
}

export interface DoubleState {
  host: string;
  port: number;
  lsn: number;
  nextSpid: number;
  statementLog: string;
  logins: Record<string, { password: string; sysadmin: boolean; alterAnyDatabase: boolean; backup: boolean }>;
  databases: Record<string, any>;
  backupset: any[];
  faults: { dropSessionAfter?: string; infoErrorOn?: string; failOn?: { match: string; number: number; message: string } };
}

export function startMssqlDouble(dir: string, o: DoubleOptions = {}): MssqlDouble {
  const dataDir = path.join(dir, 'mssql-data');
  const backupDir = path.join(dir, 'mssql-bkm');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(backupDir, { recursive: true });
  const stateFile = path.join(dir, 'mssql-double.json');
  const statementLog = path.join(dir, 'mssql-statements.jsonl');
  writeFileSync(statementLog, '');
  const dbs = o.databases ?? { shop: { filegroups: ['ARCHIVE'] } };
  const databases: Record<string, any> = {};
  for (const [name, d] of Object.entries(dbs)) {
    const fgs = ['PRIMARY', ...(d.filegroups ?? [])];
    const files: any[] = [];
    fgs.forEach((fg, i) => files.push({ file_id: i === 0 ? 1 : i + 2, type_desc: 'ROWS', name: i === 0 ? name : `${name}_${fg}`, physical_name: path.join(dataDir, i === 0 ? `${name}.mdf` : `${name}_${fg}.ndf`), data_space_id: i + 1 }));
    files.push({ file_id: 2, type_desc: 'LOG', name: `${name}_log`, physical_name: path.join(dataDir, `${name}_log.ldf`), data_space_id: 0 });
    files.sort((a, b) => a.file_id - b.file_id);
    for (const f of files) writeFileSync(f.physical_name, `MSSQL-DOUBLE ${name} file ${f.file_id}\n`);
    databases[name] = { state: 'ONLINE', recovery: d.recovery ?? 'FULL', files, filegroups: fgs.map((fg, i) => ({ data_space_id: i + 1, name: fg })), suspendedBy: null, log: [], logChainLsn: null };
  }
  const login = { password: 'double-secret', sysadmin: true, alterAnyDatabase: true, backup: true, ...o.login };
  const port = o.port ?? 14330;
  const state: DoubleState = { host: '127.0.0.1', port, lsn: 1000, nextSpid: 51, statementLog, logins: { ebr: login }, databases, backupset: [], faults: {} };
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  const read = (): DoubleState => JSON.parse(readFileSync(stateFile, 'utf8')) as DoubleState;
  const update = (f: (s: DoubleState) => void) => {
    const s = read();
    f(s);
    writeFileSync(stateFile, JSON.stringify(s, null, 2));
  };
  const sent = () =>
    readFileSync(statementLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { spid: number; sql: string });
  const fileOf = (s: DoubleState, db: string, filegroup = 'PRIMARY') => {
    const d = s.databases[db];
    const fg = d.filegroups.find((g: any) => g.name === filegroup);
    return d.files.find((f: any) => f.data_space_id === fg.data_space_id);
  };
  return {
    env: { EBR_DRIVER_MSSQL: doublePath, EBR_MSSQL_DOUBLE_STATE: stateFile, EBR_TEST_MSSQL_PASSWORD: 'double-secret' },
    instanceYaml: [
      '    adapter: mssql',
      '    mssql:',
      '      server: 127.0.0.1',
      `      port: ${port}`,
      '      user: ebr',
      '      password: ${EBR_TEST_MSSQL_PASSWORD}',
      `      databases: [${(o.backup ?? Object.keys(dbs)).join(', ')}]`,
      `      backupDir: ${backupDir}`,
      '      options: { encrypt: false }',
    ],
    stateFile,
    dataDir,
    backupDir,
    statements: () => sent().map((x) => x.sql),
    sent,
    clearStatements: () => writeFileSync(statementLog, ''),
    state: read,
    update,
    write(db, text, filegroup) {
      update((s) => {
        const d = s.databases[db];
        if (d.suspendedBy) throw new Error(`${db} is suspended for snapshot backup: writes are frozen`);
        const f = fileOf(s, db, filegroup);
        appendFileSync(f.physical_name, `${text}\n`);
        s.lsn += 1;
        d.log.push({ lsn: s.lsn, time: Date.now(), text, file_id: f.file_id });
      });
    },
    rows(db, filegroup) {
      const f = fileOf(read(), db, filegroup);
      if (!existsSync(f.physical_name)) return [];
      return readFileSync(f.physical_name, 'utf8').split('\n').slice(1).filter(Boolean);
    },
    cleanup() {
      /* the state lives in dir, which the caller removes */
    },
  };
}
