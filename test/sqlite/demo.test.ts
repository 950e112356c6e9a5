/**
 * `ebr demo` ends with a "try it yourself" line; after `npm ci` no `ebr` is on the PATH, so the line
 * must name a command that works from the demo's directory. Run exactly as printed, in a shell.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, tempDir } from '../helpers/env.js';

function sh(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

const ebrOnPath = (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, 'ebr')));

async function demoIn(dir: string): Promise<string> {
  const r = await runEbr(['demo', '--dir', dir]);
  expect(r.code, r.stderr).toBe(0);
  const line = r.stdout.split('\n').find((l) => l.startsWith('try it yourself: '));
  expect(line, r.stdout).toBeDefined();
  return line!.slice('try it yourself: '.length);
}

describe('ebr demo: the try-it-yourself line', () => {
  const t = tempDir();
  // Inside the package (as `npm run demo` makes ./ebr-demo), in a git-ignored directory.
  const inRepo = path.join(repoRoot, 'dist', `demo-test-${process.pid}`);
  afterAll(() => {
    t.cleanup();
    rmSync(inRepo, { recursive: true, force: true });
  });

  it('outside the package it names node and the CLI file, and that runs', async () => {
    const line = await demoIn(path.join(t.dir, 'demo'));
    if (!ebrOnPath) expect(line).toMatch(/&& node \S+\/dist\/src\/cli\/main\.js list && /);
    const r = await sh(line);
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/\bcomplete\b/);
    expect(r.stdout).toMatch(/every digest matches/);
  });

  it('inside the package it says npx ebr, and that runs (package.json has the bin)', async () => {
    mkdirSync(path.dirname(inRepo), { recursive: true });
    const line = await demoIn(inRepo);
    if (!ebrOnPath) expect(line).toBe(`cd ${inRepo} && npx ebr list && npx ebr show latest && npx ebr verify`);
    const r = await sh(line);
    expect(r.code, `${line}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/every digest matches/);
  });
});
