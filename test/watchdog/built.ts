/** The watchdog runs as a separate, compiled program: build dist/ when it is older than the sources. */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/env.js';

const sources = ['src/workflow/watchdog.ts', 'src/workflow/watchdog-process.ts', 'src/workflow/watchdog-journal.ts', 'src/workflow/watchdog-release.ts', 'src/util/runner.ts'];

export function ensureBuilt(): string {
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
  const built = path.join(repoRoot, 'dist/src/workflow/watchdog.js');
  if (!existsSync(built)) throw new Error('dist/src/workflow/watchdog.js is missing: run npm run build');
  return built;
}
