/**
 * How this very ebr is run again from another process: a server's archive_command, a watchdog's
 * release command. Absolute node and entry paths (the server's PATH is not the DBA's) and the config
 * file the running command uses.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The node entry of the ebr CLI: the one running now when it is the CLI, else the built one. */
export function ebrEntry(): string {
  const running = process.argv[1];
  if (running && /(^|\/)(ebr|main\.js)$/.test(running) && existsSync(running)) return path.resolve(running);
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Built: dist/src/util → dist/src/cli/main.js. From sources: src/util → dist/src/cli/main.js.
  for (const candidate of [path.resolve(here, '../cli/main.js'), path.resolve(here, '../../dist/src/cli/main.js')]) {
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

/** `node main.js --config FILE <args>` as argv. */
export function ebrArgv(configFile: string | undefined, args: string[]): string[] {
  return [process.execPath, ebrEntry(), '--config', ebrConfigFile(configFile), ...args];
}

/** A word for a shell command line. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
