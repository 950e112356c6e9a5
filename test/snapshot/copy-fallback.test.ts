/** Which chunks `snapshot.copyFallback` lets a snapshot provider copy instead of freeze. */
import { describe, expect, it } from 'vitest';
import type { Chunk } from '../../src/model.js';
import { copyFallbackMatcher, globToRegExp } from '../../src/snapshot/consistency-group.js';

const c = (space: string, name: string, p: string): Chunk => ({ space, name, path: p, type: 'file', size: 1 });

describe('copyFallback entries', () => {
  it('globs keep * and ? inside one segment and let ** cross segments', () => {
    expect(globToRegExp('/srv/*/x').test('/srv/a/x')).toBe(true);
    expect(globToRegExp('/srv/*/x').test('/srv/a/b/x')).toBe(false);
    expect(globToRegExp('/srv/**/x').test('/srv/x')).toBe(true);
    expect(globToRegExp('/srv/**/x').test('/srv/a/b/x')).toBe(true);
    expect(globToRegExp('/srv/**').test('/srv/a/b')).toBe(true);
    expect(globToRegExp('f?.db').test('f1.db')).toBe(true);
    expect(globToRegExp('f?.db').test('f12.db')).toBe(false);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });

  it('matches an absolute path or glob against the chunk path, space:NAME against the space, anything else against the name', () => {
    const m = copyFallbackMatcher(['/mnt/ext/ts', '/opt/*.db', 'space:audit', 'pg_tblspc/**'], 'btrfs');
    expect(m(c('x', 'a', '/mnt/ext/ts/16384/1'))).toBe(true); // a plain path covers what is under it
    expect(m(c('x', 'a', '/mnt/ext/tsx/1'))).toBe(false);
    expect(m(c('x', 'a', '/opt/shop.db'))).toBe(true);
    expect(m(c('x', 'a', '/opt/sub/shop.db'))).toBe(false);
    expect(m(c('audit', 'audit.db', '/elsewhere/audit.db'))).toBe(true);
    expect(m(c('main', 'pg_tblspc/16384/PG_16/1/2', '/data/pg_tblspc/16384/PG_16/1/2'))).toBe(true);
    expect(m(c('main', 'base/1/2', '/data/base/1/2'))).toBe(false);
    expect(copyFallbackMatcher(undefined, 'btrfs')(c('x', 'a', '/a'))).toBe(false);
    expect(copyFallbackMatcher('space:x', 'btrfs')(c('x', 'a', '/a'))).toBe(true);
  });

  it('rejects a value that is not a list of strings, with an example in the hint', () => {
    expect(() => copyFallbackMatcher({ path: '/x' }, 'zfs')).toThrow(/snapshot.copyFallback must be a list/);
    expect(() => copyFallbackMatcher([''], 'zfs')).toThrow(/copyFallback/);
  });
});
