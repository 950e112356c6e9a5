/** The swap puts all verified files in place, or none of them. */
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { swapIn } from '../../src/workflow/swap.js';
import { tempDir } from '../helpers/env.js';

describe('swapIn', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('replaces files and removes the side files of the old ones', async () => {
    const d = path.join(t.dir, 'ok');
    mkdirSync(d);
    writeFileSync(path.join(d, 'db'), 'old');
    writeFileSync(path.join(d, 'db-wal'), 'stale wal');
    writeFileSync(path.join(d, 'db.new'), 'new');
    await swapIn([{ temp: path.join(d, 'db.new'), dest: path.join(d, 'db'), sideFiles: [path.join(d, 'db-wal'), path.join(d, 'db-shm')] }], 'x');
    expect(readFileSync(path.join(d, 'db'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['db']);
  });

  it('puts everything back when one rename fails', async () => {
    const d = path.join(t.dir, 'fail');
    mkdirSync(d);
    writeFileSync(path.join(d, 'a'), 'old a');
    writeFileSync(path.join(d, 'a-wal'), 'old a wal');
    writeFileSync(path.join(d, 'b'), 'old b');
    writeFileSync(path.join(d, 'a.new'), 'new a');
    // b's staged file does not exist: the second rename fails after a is already in place.
    await expect(
      swapIn(
        [
          { temp: path.join(d, 'a.new'), dest: path.join(d, 'a'), sideFiles: [path.join(d, 'a-wal')] },
          { temp: path.join(d, 'b.missing'), dest: path.join(d, 'b'), sideFiles: [] },
        ],
        'y',
      ),
    ).rejects.toThrow();
    expect(readFileSync(path.join(d, 'a'), 'utf8')).toBe('old a');
    expect(readFileSync(path.join(d, 'a-wal'), 'utf8')).toBe('old a wal');
    expect(readFileSync(path.join(d, 'b'), 'utf8')).toBe('old b');
    expect(existsSync(path.join(d, 'a.ebr-old-y'))).toBe(false);
  });
});
