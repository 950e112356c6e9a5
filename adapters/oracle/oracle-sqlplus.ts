/**
 * SQL*Plus, for what the thin driver cannot do: STARTUP MOUNT, RECOVER, and anything on an instance
 * that is not open. Each script goes on stdin, stops at the first error (WHENEVER SQLERROR EXIT
 * FAILURE), and marks every statement with a PROMPT line, so an ORA- or SP2- error in the output is
 * reported with the statement that caused it.
 */
import { loadExeca } from '../../src/util/execa.js';
import { EbrError, type ErrorContext } from '../../src/errors.js';
import type { OracleSettings } from './oracle-config.js';

export const stepMarker = 'ebr-step';
const informational = new Set(['ORA-00278', 'ORA-00279', 'ORA-00280', 'ORA-00289']);

export interface SqlplusScript {
  /** Statements and SQL*Plus commands, one per entry, without the marker lines. */
  statements: string[];
  /** Lines answered to RECOVER's prompts (log file names, CANCEL), after the statement at this index. */
  answers?: { after: number; lines: string[] };
}

export function sqlplusArgv(s: Pick<OracleSettings, 'sqlplus'>): string[] {
  return [s.sqlplus, '-S', '-L', '/ as sysdba'];
}

/** The text sent on stdin. */
export function renderScript(script: SqlplusScript): string {
  const lines = ['WHENEVER OSERROR EXIT FAILURE', 'WHENEVER SQLERROR EXIT FAILURE', 'SET HEADING OFF FEEDBACK OFF PAGESIZE 0 LINESIZE 4000'];
  script.statements.forEach((st, i) => {
    lines.push(`PROMPT ${stepMarker} ${i + 1}`, st);
    if (script.answers && script.answers.after === i) lines.push(...script.answers.lines);
  });
  lines.push('EXIT SUCCESS');
  return lines.join('\n') + '\n';
}

export interface SqlplusResult {
  exitCode: number;
  output: string;
  /** The first ORA-/SP2- error and the statement it followed. */
  error?: { code: string; text: string; statement: string | undefined };
}

export async function runSqlplus(s: OracleSettings, script: SqlplusScript, signal: AbortSignal, context: ErrorContext): Promise<SqlplusResult> {
  const [file, ...args] = sqlplusArgv(s);
  const env: Record<string, string> = {};
  if (s.oracleSid) env.ORACLE_SID = s.oracleSid;
  if (s.oracleHome) env.ORACLE_HOME = s.oracleHome;
  let r;
  try {
    const execa = await loadExeca();
    r = await execa(file!, args, { input: renderScript(script), env, reject: false, all: true, cancelSignal: signal, forceKillAfterDelay: 5000, stripFinalNewline: false });
  } catch (err) {
    throw new EbrError('restore', `cannot run ${file}: ${(err as Error).message}`, { hint: 'set oracle.sqlplus to the SQL*Plus binary ($ORACLE_HOME/bin/sqlplus)', context, cause: err });
  }
  if ((r as { code?: string }).code === 'ENOENT' || (r.failed && r.exitCode === undefined && !r.isCanceled)) {
    throw new EbrError('restore', `cannot run ${file}: ${r.shortMessage ?? 'not found'}`, {
      hint: 'install SQL*Plus (or the Instant Client with SQL*Plus) and set oracle.sqlplus to its path, and oracle.oracleHome / oracleSid if the environment lacks them',
      context: { ...context, command: file },
    });
  }
  if (r.isCanceled) throw new EbrError('cancelled', `cancelled while ${file} ran`, { context });
  const output = String(r.all ?? '');
  const result: SqlplusResult = { exitCode: r.exitCode ?? 1, output };
  // ORA-00279, -00280, -00289 and -00278 are RECOVER's prompts and progress, not errors.
  const m = [...output.matchAll(/^\s*((ORA-\d{5}|SP2-\d{4}):.*)$/gm)].find((x) => !informational.has(x[2]!));
  if (m) {
    const before = output.slice(0, m.index ?? 0);
    const steps = [...before.matchAll(new RegExp(`^${stepMarker} (\\d+)$`, 'gm'))];
    const n = steps.length ? Number(steps[steps.length - 1]![1]) : undefined;
    result.error = { code: m[2]!, text: m[1]!.trim(), statement: n ? script.statements[n - 1] : undefined };
  }
  return result;
}

const hints: Record<string, string> = {
  'ORA-01031': 'SQL*Plus connects as `/ as sysdba`: run ebr restore as the oracle OS user (or a member of the dba group) on the database host',
  'ORA-01034': 'the instance is not started',
  'ORA-00308': 'recovery needs an archived log ebr does not have: run `ebr log sync` while the old database still runs, or restore to an earlier --until',
  'ORA-01547': 'the files are not yet consistent: recovery needs more archived logs than ebr holds; restore to a later --until, or check `ebr log list`',
  'ORA-01152': 'the files are not yet consistent: recovery needs more archived logs than ebr holds',
  'ORA-01113': 'a datafile needs media recovery: run the restore again, or RECOVER DATABASE by hand',
  'ORA-01541': 'SYSTEM cannot be taken offline: restore the whole database',
  'ORA-19840': 'SNAPSHOT TIME recovery needs the Advanced Compression option or Oracle 18c+; take backups without crashConsistentSnapshot',
  'ORA-01081': 'the instance is already started: SHUTDOWN IMMEDIATE first',
  'ORA-01109': 'the database is not open',
};

/** A failed script as an EbrError: the statement, the Oracle error, and what to do. */
export function sqlplusError(r: SqlplusResult, what: string, s: OracleSettings, context: ErrorContext): EbrError {
  const argv = sqlplusArgv(s).join(' ');
  if (r.error) {
    return new EbrError('restore', `${what}: ${r.error.statement ?? '(SQL*Plus)'} failed: ${r.error.text}`, {
      hint: hints[r.error.code] ?? (r.error.code.startsWith('SP2-') ? `SQL*Plus refused the script (${argv}); check the SQL*Plus version and its environment (ORACLE_HOME, ORACLE_SID)` : 'see the Oracle error; the alert log has the details'),
      context: { ...context, command: argv, ...(r.error.statement ? { statement: r.error.statement } : {}), oracleError: r.error.code },
    });
  }
  return new EbrError('restore', `${what}: ${argv} exited with ${r.exitCode}: ${r.output.trim().split('\n').slice(-3).join(' / ') || 'no output'}`, {
    hint: 'check ORACLE_HOME and ORACLE_SID (oracle.oracleHome, oracle.oracleSid) and that ebr runs as the oracle OS user',
    context: { ...context, command: argv },
  });
}
