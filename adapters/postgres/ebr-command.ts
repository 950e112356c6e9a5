/**
 * The ebr command line PostgreSQL runs as archive_command and restore_command: the absolute node and
 * ebr entry paths (the server's PATH is not the DBA's), the config file, and the instance.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The node entry of the ebr CLI: the one running now when it is the CLI, else the built one beside this module. */
export function ebrEntry(): string {
  const running = process.argv[1];
  if (running && /(^|\/)(ebr|main\.js)$/.test(running) && existsSync(running)) return path.resolve(running);
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Built: dist/adapters/postgres → dist/src/cli/main.js. From sources: adapters/postgres → dist/src/cli/main.js.
  for (const candidate of [path.resolve(here, '../../src/cli/main.js'), path.resolve(here, '../../dist/src/cli/main.js')]) {
    if (existsSync(candidate)) return candidate;
  }
  return path.resolve(here, '../../dist/src/cli/main.js');
}

/** The config file the running ebr uses: --config, else $EBR_CONFIG, else ./ebr.yaml (as the CLI decides). */
export function ebrConfigFile(explicit?: string): string {
  if (explicit) return path.resolve(explicit);
  const argv = process.argv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '--config' || a === '-c') && argv[i + 1]) return path.resolve(argv[i + 1]!);
    if (a.startsWith('--config=')) return path.resolve(a.slice('--config='.length));
  }
  return path.resolve(process.env.EBR_CONFIG ?? 'ebr.yaml');
}

/** `'node' 'main.js' --config 'file' wal <verb> --instance name <args>` as one shell command. */
export function walCommand(verb: 'push' | 'get', instance: string, configFile: string | undefined, args: string[]): string {
  return [process.execPath, ebrEntry(), '--config', ebrConfigFile(configFile), 'wal', verb, '--instance', instance].map(shellQuote).concat(args).join(' ');
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A value for postgresql.conf: single-quoted, quotes doubled. */
export function confQuote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
