import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SmallFilePrefetch } from '../../src/workflow/small-file-prefetch.js';
import { tempDir } from '../helpers/env.js';

describe('SmallFilePrefetch', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('reads small files ahead, leaves large ones to streaming, and reports a failed read when taken', async () => {
    const items = ['a', 'b', 'big', 'gone'].map((n) => ({ key: n, path: path.join(t.dir, n), size: n === 'big' ? 10 << 20 : 3 }));
    for (const n of ['a', 'b']) writeFileSync(path.join(t.dir, n), n.repeat(3));
    const p = new SmallFilePrefetch(items, 2);
    p.fill();
    expect((await p.take('a'))!.toString()).toBe('aaa');
    expect((await p.take('b'))!.toString()).toBe('bbb');
    expect(p.take('big')).toBeUndefined();
    await expect(p.take('gone')!).rejects.toThrow(/ENOENT/);
  });

  it('holds at most depth files at once', () => {
    const items = Array.from({ length: 20 }, (_, i) => ({ key: `f${i}`, path: path.join(t.dir, 'a'), size: 3 }));
    const p = new SmallFilePrefetch(items, 4);
    p.fill();
    expect((p as unknown as { pending: Map<string, unknown> }).pending.size).toBe(4);
    p.take('f0');
    expect((p as unknown as { pending: Map<string, unknown> }).pending.size).toBe(4);
  });
});
