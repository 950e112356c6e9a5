/**
 * The Db2 stand-in for tests: a state file describing one database of one instance whose database
 * directory, log path and tablespace containers are real files in a temp dir, and stand-ins of the
 * `db2` command line processor and `db2inidb` that read and change it. No Db2 server is involved.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const db2Binary = path.join(here, 'db2-double.mjs');
export const db2inidbBinary = path.join(here, 'db2inidb-double.mjs');

export interface Db2DoubleState {
  database: string;
  instance: string;
  server: string;
  authid: string;
  started: boolean;
  active: boolean;
  denied?: string[];
  suspendIo: 'NO' | 'YES' | 'IN_PROGRESS';
  suspendedBy: number | null;
  suspendedAt?: string;
  includeLogs?: boolean;
  resumedBy?: { pid: number; how: string; at: string };
  logArchMeth1: string;
  rollforwardPending: boolean;
  initializedAs?: string;
  rolledForward?: { to: string | null; at: string };
  paths: Array<{ partition: number; type: string; path: string }>;
  tablespaces: Array<{ name: string; id: number; type: string; content: string }>;
  containers: Array<{ tablespace: string; id: number; name: string; type: string }>;
}

export interface Db2Call {
  at: string;
  pid: number;
  instance: string | null;
  tool: 'db2' | 'db2inidb';
  mode: 'interactive' | 'oneshot';
  command: string;
}

export interface Db2Double {
  env: Record<string, string>;
  /** The instance's lines in ebr.yaml, indented for `instances: <name>:`. */
  instanceYaml: string[];
  dir: string;
  stateFile: string;
  /** Every call, in order (an interactive CLP's start is a call with an empty command). */
  calls(): Db2Call[];
  state(): Db2DoubleState;
  update(change: (s: Db2DoubleState) => void): void;
  /** The files of the database by role. */
  files: { dbpath: string; logpath: string; localDbDir: string; catalog: string; users: string; sms: string };
  clearCalls(): void;
  cleanup(): void;
}

const jsonl = <T>(file: string): T[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T) : []);

export function startDb2Double(dir: string, o: { logArchMeth1?: string; restoreAs?: string; extraYaml?: string[] } = {}): Db2Double {
  const storage = path.join(dir, 'db2data');
  const node = path.join(storage, 'db2inst1', 'NODE0000');
  const dbpath = path.join(node, 'SQL00001');
  const logpath = path.join(dbpath, 'LOGSTREAM0000');
  const localDbDir = path.join(node, 'sqldbdir');
  const tdir = path.join(node, 'SAMPLE');
  const catalog = path.join(tdir, 'T0000000', 'C0000000.CAT');
  const tempDir = path.join(tdir, 'T0000001', 'C0000000.TMP');
  const users = path.join(tdir, 'T0000002', 'C0000000.LRG');
  const sms = path.join(storage, 'sms', 'APPSMS');
  for (const d of [logpath, localDbDir, path.dirname(catalog), tempDir, path.dirname(users), path.join(sms, 'SQLT0000.0')]) mkdirSync(d, { recursive: true });
  const fill = (f: string, text: string, n: number) => writeFileSync(f, text.repeat(n));
  fill(path.join(dbpath, 'SQLDBCONF'), 'db cfg SAMPLE\n', 40);
  fill(path.join(dbpath, 'SQLOGCTL.LFH.1'), 'log control 1\n', 10);
  fill(path.join(dbpath, 'SQLOGCTL.LFH.2'), 'log control 2\n', 10);
  fill(path.join(dbpath, 'db2rhist.asc'), 'history\n', 20);
  fill(path.join(logpath, 'S0000000.LOG'), 'log 0\n', 300);
  fill(path.join(logpath, 'S0000001.LOG'), 'log 1\n', 200);
  fill(path.join(localDbDir, 'sqldbdir'), 'local db dir\n', 5);
  fill(catalog, 'SYSCATSPACE page\n', 500);
  fill(path.join(tempDir, 'SQLTMP.000'), 'temp\n', 50);
  fill(users, 'USERSPACE1 page\n', 700);
  fill(path.join(sms, 'SQLT0000.0', 'SQL00002.DAT'), 'APPSMS table\n', 90);
  fill(path.join(sms, 'SQLT0000.0', 'SQL00002.INX'), 'APPSMS index\n', 30);
  const state: Db2DoubleState = {
    database: 'SAMPLE',
    instance: 'db2inst1',
    server: 'DB2/LINUXX8664 11.5.9.0',
    authid: 'DB2INST1',
    started: true,
    active: true,
    suspendIo: 'NO',
    suspendedBy: null,
    logArchMeth1: o.logArchMeth1 ?? `DISK:${path.join(dir, 'archive')}/`,
    rollforwardPending: false,
    paths: [
      { partition: 0, type: 'LOGPATH', path: `${logpath}/` },
      { partition: 0, type: 'DB_STORAGE_PATH', path: `${storage}/` },
      { partition: 0, type: 'LOCAL_DB_DIRECTORY', path: `${localDbDir}/` },
      { partition: 0, type: 'DBPATH', path: `${dbpath}/` },
      { partition: 0, type: 'TBSP_CONTAINER', path: catalog },
      { partition: 0, type: 'TBSP_DIRECTORY', path: `${tempDir}/` },
      { partition: 0, type: 'TBSP_CONTAINER', path: users },
      { partition: 0, type: 'TBSP_DIRECTORY', path: `${sms}/` },
    ],
    tablespaces: [
      { name: 'SYSCATSPACE', id: 0, type: 'DMS', content: 'ANY' },
      { name: 'TEMPSPACE1', id: 1, type: 'SMS', content: 'SYSTEMP' },
      { name: 'USERSPACE1', id: 2, type: 'DMS', content: 'LARGE' },
      { name: 'APPSMS', id: 3, type: 'SMS', content: 'ANY' },
    ],
    containers: [
      { tablespace: 'SYSCATSPACE', id: 0, name: catalog, type: 'FILE_EXTENT_TAG' },
      { tablespace: 'TEMPSPACE1', id: 0, name: tempDir, type: 'PATH' },
      { tablespace: 'USERSPACE1', id: 0, name: users, type: 'FILE_EXTENT_TAG' },
      { tablespace: 'APPSMS', id: 0, name: sms, type: 'PATH' },
    ],
  };
  mkdirSync(path.join(dir, 'archive'), { recursive: true });
  const stateFile = path.join(dir, 'db2-double.json');
  writeFileSync(stateFile, JSON.stringify(state, null, 1));
  const read = () => JSON.parse(readFileSync(stateFile, 'utf8')) as Db2DoubleState;
  const instanceYaml = [
    '    adapter: db2',
    '    db2:',
    '      database: SAMPLE',
    '      instance: db2inst1',
    `      db2: ${db2Binary}`,
    `      db2inidb: ${db2inidbBinary}`,
    ...(o.restoreAs ? [`      restoreAs: ${o.restoreAs}`] : []),
    ...(o.extraYaml ?? []),
  ];
  return {
    env: { EBR_DB2_DOUBLE_STATE: stateFile },
    instanceYaml,
    dir,
    stateFile,
    calls: () => jsonl<Db2Call>(`${stateFile}.calls.jsonl`),
    state: read,
    update(change) {
      const s = read();
      change(s);
      writeFileSync(stateFile, JSON.stringify(s, null, 1));
    },
    files: { dbpath, logpath, localDbDir, catalog, users, sms },
    clearCalls() {
      if (existsSync(`${stateFile}.calls.jsonl`)) writeFileSync(`${stateFile}.calls.jsonl`, '');
    },
    cleanup() {
      rmSync(storage, { recursive: true, force: true });
      for (const f of [stateFile, `${stateFile}.calls.jsonl`]) rmSync(f, { force: true });
    },
  };
}
