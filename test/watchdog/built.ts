/**
 * The watchdog and the CLI run as separate, compiled programs: build dist/ when it is missing or older
 * than the sources a test depends on.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/env.js';

const watchdogSources = ['src/workflow/watchdog.ts', 'src/workflow/watchdog-process.ts', 'src/workflow/watchdog-journal.ts', 'src/workflow/watchdog-release.ts', 'src/util/runner.ts'];

/** Every .ts file under the given directories (relative to the repository). */
export function sourcesUnder(...dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(repoRoot, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.name.endsWith('.ts')) out.push(r);
    }
  };
  for (const d of dirs) walk(d);
  return out;
}

/** Builds when any source is newer than its output; returns the path of the built file asked for. */
export function ensureBuilt(sources: string[] = watchdogSources, want = 'dist/src/workflow/watchdog.js'): string {
  const stale = sources.some((s) => {
    const out = path.join(repoRoot, 'dist', s.replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(path.join(repoRoot, s)).mtimeMs;
  });
  if (stale) {
    // tsc emits even when some other file has a type error; only a missing output is fatal.
    try {
      execFileSync(process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', repoRoot], { stdio: 'ignore' });
    } catch {
      // checked below
    }
  }
  const built = path.join(repoRoot, want);
  if (!existsSync(built)) throw new Error(`${want} is missing: run npm run build`);
  // As `npm run build` does: the package's bin must stay executable for the tests that run `npx ebr`
  // while this one rebuilds.
  chmodSync(path.join(repoRoot, 'dist/src/cli/main.js'), 0o755);
  return built;
}
