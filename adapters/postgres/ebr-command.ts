/**
 * The ebr command line PostgreSQL runs as archive_command and restore_command: the absolute node and
 * ebr entry paths (the server's PATH is not the DBA's), the config file, and the instance.
 */
import { ebrArgv, shellQuote } from '../../src/util/ebr-self.js';

/** `'node' 'main.js' --config 'file' wal <verb> --instance name <args>` as one shell command. */
export function walCommand(verb: 'push' | 'get', instance: string, configFile: string | undefined, args: string[]): string {
  return ebrArgv(configFile, ['wal', verb, '--instance', instance]).map(shellQuote).concat(args).join(' ');
}

export { shellQuote };

/** A value for postgresql.conf: single-quoted, quotes doubled. */
export function confQuote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
