/**
 * The Oracle stand-in for tests: a state file describing a small database whose datafiles, control
 * files and archived logs are real files in a temp dir, the driver stand-in (loaded by the adapter
 * through $EBR_DRIVER_ORACLEDB) and the SQL*Plus stand-in. No Oracle server is involved anywhere.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const driverModule = path.join(here, 'oracledb-double.mjs');
export const sqlplusBinary = path.join(here, 'sqlplus-double.mjs');

export interface DoubleState {
  connectString: string;
  user: string;
  password: string;
  privileges: string[];
  denied: string[];
  dbid: number;
  dbName: string;
  instanceName: string;
  logMode: 'ARCHIVELOG' | 'NOARCHIVELOG';
  status: 'OPEN' | 'MOUNTED' | 'SHUTDOWN';
  resetlogsId: number;
  resetlogsChange: number;
  scn: number;
  thread: number;
  sequence: number;
  logFirstChange: number;
  logFirstTime?: string;
  undoTablespace: string;
  spfile: string;
  logArchiveFormat: string;
  archiveDest: string;
  tablespaces: Array<{ name: string; contents: string; status: string; needsRecovery?: boolean }>;
  datafiles: Array<{ file: number; name: string; ts: string }>;
  tempfiles: string[];
  controlfiles: string[];
  logfiles: Array<{ group: number; member: string }>;
  backup: Record<string, { status: string; change: number; time: string }>;
  archived: Array<{ name: string; thread: number; sequence: number; resetlogsId: number; resetlogsChange: number; firstTime: string; nextTime: string; deleted: string; sha256: string }>;
  lastBeganSequence?: number;
  recovery?: { appliedThrough: number; consistent: boolean; until: string | null; snapshotTime: string | null };
  opened?: { resetlogs: boolean; recovery: { appliedThrough: number; until: string | null; snapshotTime: string | null } };
}

export interface SqlplusRun {
  argv: string[];
  oracleSid: string | null;
  stdin: string;
}

export interface OracleDouble {
  /** For the ebr process (runEbr's env) or process.env of an in-process test. */
  env: Record<string, string>;
  /** The instance's lines in ebr.yaml, indented for `instances: <name>:`, up to and excluding snapshot/target. */
  instanceYaml: string;
  password: string;
  dir: string;
  stateFile: string;
  /** Every statement the driver stand-in received, in order (whitespace normalized). */
  statements(): string[];
  /** Every SQL*Plus run: its argv and stdin. */
  sqlplusRuns(): SqlplusRun[];
  state(): DoubleState;
  update(change: (s: DoubleState) => void): void;
  datafile(ts: string, n?: number): string;
  /** ALTER SYSTEM ARCHIVE LOG CURRENT done by "someone else" (a log switch), as the server does on its own. */
  switchLog(): Promise<void>;
  /** Forget what was recorded so far. */
  clearLogs(): void;
  cleanup(): void;
}

const jsonl = <T>(file: string): T[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : []);

export function startOracleDouble(dir: string, o: { password?: string; logMode?: 'ARCHIVELOG' | 'NOARCHIVELOG'; extraYaml?: string[] } = {}): OracleDouble {
  const oradata = path.join(dir, 'oradata', 'ORCL');
  const fra = path.join(dir, 'fra', 'ORCL');
  const arch = path.join(dir, 'arch');
  for (const d of [oradata, fra, arch]) mkdirSync(d, { recursive: true });
  const password = o.password ?? 'double-secret';
  const ts = (name: string, contents = 'PERMANENT') => ({ name, contents, status: 'ONLINE' });
  const files: Array<{ file: number; name: string; ts: string }> = [
    { file: 1, name: path.join(oradata, 'system01.dbf'), ts: 'SYSTEM' },
    { file: 2, name: path.join(oradata, 'sysaux01.dbf'), ts: 'SYSAUX' },
    { file: 3, name: path.join(oradata, 'undotbs01.dbf'), ts: 'UNDOTBS1' },
    { file: 4, name: path.join(oradata, 'users01.dbf'), ts: 'USERS' },
    { file: 5, name: path.join(oradata, 'users02.dbf'), ts: 'USERS' },
    { file: 6, name: path.join(oradata, 'app01.dbf'), ts: 'APP' },
  ];
  for (const f of files) writeFileSync(f.name, `${f.ts} datafile ${f.file}\n`.repeat(64 * f.file));
  const controlfiles = [path.join(oradata, 'control01.ctl'), path.join(fra, 'control02.ctl')];
  for (const c of controlfiles) writeFileSync(c, JSON.stringify({ kind: 'oracle-double live controlfile' }));
  const temp = path.join(oradata, 'temp01.dbf');
  writeFileSync(temp, 'temp');
  const state: DoubleState = {
    connectString: 'dbhost:1521/ORCLCDB',
    user: 'EBR',
    password,
    privileges: ['SYSBACKUP'],
    denied: [],
    dbid: 1627384950,
    dbName: 'ORCL',
    instanceName: 'orcl',
    logMode: o.logMode ?? 'ARCHIVELOG',
    status: 'OPEN',
    resetlogsId: 1163456789,
    resetlogsChange: 1920977,
    scn: 2_000_000,
    thread: 1,
    sequence: 7,
    logFirstChange: 1_999_000,
    undoTablespace: 'UNDOTBS1',
    spfile: path.join(dir, 'dbs', 'spfileorcl.ora'),
    logArchiveFormat: '%t_%s_%r.dbf',
    archiveDest: arch,
    tablespaces: [ts('SYSTEM'), ts('SYSAUX'), ts('UNDOTBS1', 'UNDO'), ts('TEMP', 'TEMPORARY'), ts('USERS'), ts('APP')],
    datafiles: files,
    tempfiles: [temp],
    controlfiles,
    logfiles: [1, 2, 3].map((g) => ({ group: g, member: path.join(oradata, `redo0${g}.log`) })),
    backup: {},
    archived: [],
  };
  const stateFile = path.join(dir, 'oracle-double.json');
  writeFileSync(stateFile, JSON.stringify(state, null, 1));
  const env = { EBR_DRIVER_ORACLEDB: driverModule, EBR_ORACLE_DOUBLE_STATE: stateFile };
  const read = () => JSON.parse(readFileSync(stateFile, 'utf8')) as DoubleState;
  const write = (s: DoubleState) => writeFileSync(stateFile, JSON.stringify(s, null, 1));
  const instanceYaml = [
    '    adapter: oracle',
    '    oracle:',
    `      connectString: ${state.connectString}`,
    '      user: ebr',
    '      password: ${ORACLE_DOUBLE_PASSWORD}',
    '      privilege: SYSBACKUP',
    `      sqlplus: ${sqlplusBinary}`,
    '      oracleSid: orcl',
    `      controlFileDir: ${path.join(dir, 'ctlbkp')}`,
    `      scratchDir: ${path.join(dir, 'scratch')}`,
    ...(o.extraYaml ?? []),
  ].join('\n');
  mkdirSync(path.join(dir, 'ctlbkp'), { recursive: true });
  mkdirSync(path.join(dir, 'scratch'), { recursive: true });
  return {
    env: { ...env, ORACLE_DOUBLE_PASSWORD: password },
    instanceYaml,
    password,
    dir,
    stateFile,
    statements: () => jsonl<{ sql: string }>(`${stateFile}.statements.jsonl`).map((e) => e.sql),
    sqlplusRuns: () => jsonl<SqlplusRun>(`${stateFile}.sqlplus.jsonl`),
    state: read,
    update(change) {
      const s = read();
      change(s);
      write(s);
    },
    datafile: (name, n = 0) => files.filter((f) => f.ts === name)[n]!.name,
    async switchLog() {
      const prev = process.env.EBR_ORACLE_DOUBLE_STATE;
      process.env.EBR_ORACLE_DOUBLE_STATE = stateFile;
      try {
        // @ts-expect-error a plain JavaScript module without types
        const { archiveCurrent, load, save } = (await import('./state.mjs')) as { archiveCurrent(s: unknown): void; load(): unknown; save(s: unknown): void };
        const s = load();
        archiveCurrent(s);
        save(s);
      } finally {
        if (prev === undefined) delete process.env.EBR_ORACLE_DOUBLE_STATE;
        else process.env.EBR_ORACLE_DOUBLE_STATE = prev;
      }
    },
    clearLogs() {
      for (const f of [`${stateFile}.statements.jsonl`, `${stateFile}.sqlplus.jsonl`]) if (existsSync(f)) writeFileSync(f, '');
    },
    cleanup() {
      for (const p of ['oradata', 'fra', 'arch', 'ctlbkp', 'scratch']) rmSync(path.join(dir, p), { recursive: true, force: true });
      for (const f of [stateFile, `${stateFile}.statements.jsonl`, `${stateFile}.sqlplus.jsonl`]) rmSync(f, { force: true });
    },
  };
}
