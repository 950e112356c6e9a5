/**
 * What every command shares: the global options, the config, the catalog (with crash recovery run on
 * open), one AbortSignal that SIGINT/SIGTERM abort, and output that is either text or one JSON document.
 */
import type { Command } from 'commander';
import { Catalog, localStateDir } from '../catalog/catalog.js';
import { configPath, loadConfig, pickInstance, type Config, type InstanceConfig } from '../config/load.js';
import { recoverAfterCrash } from '../workflow/recover.js';
import { progressBar } from './progress-bar.js';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export interface Cli {
  opts: GlobalOptions;
  signal: AbortSignal;
  config(): Config;
  instance(name: string | undefined): InstanceConfig;
  catalog(): Promise<Catalog>;
  /** Prints the JSON document under --json, else the text. */
  print(json: unknown, text: () => string): void;
  /** A note for the user on stderr (suppressed by --quiet and --json). */
  note(line: string): void;
  progress(): ReturnType<typeof progressBar>;
}

const controller = new AbortController();
let signalsInstalled = false;

/** The first SIGINT/SIGTERM aborts the work (the window is closed in `finally`); a second one exits at once. */
function installSignals(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) process.exit(130);
      process.stderr.write(`\nebr: ${sig} received; releasing the database and stopping (send it again to exit at once)\n`);
      controller.abort(new Error(`interrupted by ${sig}`));
    });
  }
}

export function cliOf(cmd: Command): Cli {
  installSignals();
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  let config: Config | undefined;
  let catalog: Catalog | undefined;
  const cli: Cli = {
    opts,
    signal: controller.signal,
    config() {
      config ??= loadConfig(configPath(opts.config));
      return config;
    },
    instance(name) {
      return pickInstance(cli.config(), name);
    },
    async catalog() {
      if (!catalog) {
        catalog = Catalog.open(cli.config().catalog, { localDir: localStateDir(cli.config()) });
        process.once('exit', () => catalog?.close());
        const report = await recoverAfterCrash(catalog);
        for (const b of report.failedBackups) cli.note(`backup ${b.id} of ${b.instance} was left running by a process that died in phase ${b.phase}; marked failed`);
        // Always on stderr, even under --quiet: the user must know their files were put back or completed.
        for (const r of report.restores) process.stderr.write(`ebr: ${r.message}\n`);
        for (const r of report.removedResources) cli.note(`removed leftover ${r}`);
        for (const p of report.problems) process.stderr.write(`ebr: warning: ${p}\n`);
      }
      return catalog;
    },
    print(json, text) {
      if (opts.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
      else if (!opts.quiet) process.stdout.write(`${text()}\n`);
    },
    note(line) {
      if (!opts.quiet && !opts.json) process.stderr.write(`ebr: ${line}\n`);
    },
    progress() {
      return progressBar(Boolean(process.stdout.isTTY && process.stderr.isTTY && !opts.json && !opts.quiet));
    },
  };
  return cli;
}
