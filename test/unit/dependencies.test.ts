/** Every package in package.json is used: a dependency nothing imports only costs installs and audits. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/env.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|mjs|js)$/.test(name) ? [p] : [];
  });
}

/**
 * Package names the sources import (`from 'x'`, `import('x')`, `loadDriver('x'`, `require('x')` as
 * createRequire makes it), without subpaths (`mysql2/promise` → `mysql2`).
 */
function importedPackages(): Set<string> {
  const seen = new Set<string>();
  const files = ['src', 'adapters', 'demo', 'bench', 'test'].flatMap((d) => sourceFiles(path.join(repoRoot, d)));
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*|loadDriver(?:<[^>]*>)?\(\s*|createRequire\(import\.meta\.url\)\(\s*)'([^'.][^']*)'/g)) {
      const spec = m[1]!;
      const parts = spec.split('/');
      seen.add(spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return seen;
}

describe('package.json', () => {
  const imported = importedPackages();
  const runtime = Object.keys(pkg.dependencies ?? {});
  const dev = Object.keys(pkg.devDependencies ?? {});
  // Tools run by name rather than imported (s3rver: the tests start it as a server process).
  const tools = new Set(['typescript', 'vitest', 's3rver']);

  it.each(runtime)('dependency %s is imported somewhere', (name) => {
    expect(imported.has(name), `${name} is in dependencies but nothing imports it; npm uninstall ${name}`).toBe(true);
  });

  it.each(dev)('devDependency %s is a tool, a type package of a used package, or imported', (name) => {
    if (tools.has(name)) return;
    const typed = name.startsWith('@types/') ? name.slice('@types/'.length) : undefined;
    if (typed === 'node') return;
    const used = typed ? runtime.includes(typed) && imported.has(typed) : imported.has(name);
    expect(used, `${name} is in devDependencies but nothing uses ${typed ?? name}; npm uninstall ${name}`).toBe(true);
  });
});
