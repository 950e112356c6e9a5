/**
 * How a user runs this very ebr from a shell in a given directory, for lines like the demo's "try it
 * yourself". After `npm ci` nothing named ebr is on the PATH: inside the package `npx ebr` runs its bin
 * (package.json names dist/src/cli/main.js), and anywhere else `node <that file>` does.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shellQuote } from '../util/ebr-self.js';

const mainJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

export function ebrCommandIn(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const main = real(mainJs);
  if (ebrOnPath(env) === main) return 'ebr';
  const pkg = packageRootOf(main);
  // npx looks for the bin in the project that holds the directory: the nearest one with a package.json or node_modules.
  if (pkg && projectRootOf(real(dir)) === pkg) return 'npx ebr';
  return `node ${shellQuote(main)}`;
}

export { shellQuote };

function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/** What `ebr` on the PATH resolves to (npm link and npm install -g make it a symlink to main.js). */
function ebrOnPath(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'ebr');
    if (existsSync(candidate)) return real(candidate);
  }
  return undefined;
}

/** The directory of the package.json whose bin `ebr` is this main.js. */
function packageRootOf(main: string): string | undefined {
  for (let dir = path.dirname(main); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { bin?: Record<string, string> | string };
        const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.ebr;
        if (bin && real(path.join(dir, bin)) === main) return dir;
      } catch {
        // not a package.json we can read: keep looking
      }
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

function projectRootOf(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json')) || existsSync(path.join(d, 'node_modules'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}
