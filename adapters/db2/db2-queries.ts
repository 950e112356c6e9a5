/**
 * Every command ebr sends to Db2, in one place, so `--dry-run` lists exactly what a run sends. Columns
 * are cast to VARCHAR so the CLP prints them at a fixed width (its table format: a header, a line of
 * dashes, the rows).
 */
import type { PlanStep } from '../../src/adapter-api.js';
import { clpStep, commandStep } from './db2-clp.js';
import type { Db2Settings } from './db2-config.js';

export const connect = (db: string) => `CONNECT TO ${db}`;
export const dbConfig = (db: string) => `GET DATABASE CONFIGURATION FOR ${db}`;
/** ADMIN_LIST_DB_PATHS: every path a split mirror must copy (DBPATH, LOGPATH, containers, storage paths). */
export const dbPaths = 'SELECT DBPARTITIONNUM, VARCHAR(TYPE, 20) AS TYPE, VARCHAR(PATH, 1024) AS PATH FROM TABLE(SYSPROC.ADMIN_LIST_DB_PATHS()) AS T';
export const tablespaces = "SELECT VARCHAR(TBSP_NAME, 128) AS TBSP_NAME, TBSP_ID, VARCHAR(TBSP_TYPE, 10) AS TBSP_TYPE, VARCHAR(TBSP_CONTENT_TYPE, 10) AS TBSP_CONTENT_TYPE FROM TABLE(MON_GET_TABLESPACE('', -2)) AS T";
export const containers = "SELECT VARCHAR(TBSP_NAME, 128) AS TBSP_NAME, CONTAINER_ID, VARCHAR(CONTAINER_NAME, 1024) AS CONTAINER_NAME, VARCHAR(CONTAINER_TYPE, 16) AS CONTAINER_TYPE FROM TABLE(MON_GET_CONTAINER('', -2)) AS T";
/** Written pages out before the window, so the split mirror needs less crash recovery (SET WRITE command, usage notes). */
export const flush = 'FLUSH BUFFERPOOLS ALL';
export const suspend = 'SET WRITE SUSPEND FOR DATABASE INCLUDE LOGS';
export const resume = 'SET WRITE RESUME FOR DATABASE';
export const connectReset = 'CONNECT RESET';
export const terminate = 'TERMINATE';

/** One-shot commands, outside any window: each `db2` run connects (or not) on its own. */
export const argv = {
  dbConfig: (s: Db2Settings) => [s.db2, dbConfig(s.database)],
  restartWriteResume: (s: Db2Settings) => [s.db2, `RESTART DATABASE ${s.database} WRITE RESUME`],
  activeDatabases: (s: Db2Settings) => [s.db2, 'LIST ACTIVE DATABASES'],
  inidb: (s: Db2Settings, as: 'mirror' | 'snapshot' | 'standby', relocate?: string) => [s.db2inidb, s.database, 'AS', as.toUpperCase(), ...(relocate ? ['RELOCATE', 'USING', relocate] : [])],
  rollforward: (s: Db2Settings, to: string | undefined) => [s.db2, to ? `ROLLFORWARD DATABASE ${s.database} TO ${to} USING LOCAL TIME AND STOP` : `ROLLFORWARD DATABASE ${s.database} TO END OF LOGS AND STOP`],
};

/** What the backup session sends, phase by phase, in the order the workflow calls it. */
export function backupPlan(s: Db2Settings): PlanStep[] {
  return [
    commandStep('connect', [s.db2]),
    clpStep('connect', dbConfig(s.database)),
    clpStep('connect', connect(s.database)),
    clpStep('discover', dbPaths),
    clpStep('discover', tablespaces),
    clpStep('discover', containers),
    clpStep('checkpoint', flush),
    clpStep('acquire', suspend),
    clpStep('release', resume),
  ];
}

/** `ROLLFORWARD … TO isotime USING LOCAL TIME`: yyyy-mm-dd-hh.mm.ss in the server's local time (ebr runs on the database host). */
export function db2Time(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}.${p(d.getMinutes())}.${p(d.getSeconds())}`;
}
