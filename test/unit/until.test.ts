import { describe, expect, it } from 'vitest';
import { parseUntil } from '../../src/util/time.js';

describe('--until', () => {
  it.each([
    ['2026-11-22T14:30:00Z', '2026-11-22T14:30:00.000Z'],
    ['2026-11-22 14:30:00+02', '2026-11-22T12:30:00.000Z'],
    ['2026-11-22 14:30:00.123456+05:30', '2026-11-22T09:00:00.123Z'],
    ['2026-11-22 14:30:00-0330', '2026-11-22T18:00:00.000Z'],
  ])('reads %s', (text, iso) => {
    expect(parseUntil(text).toISOString()).toBe(iso);
  });

  it('reads a time without an offset in the local time zone', () => {
    const d = parseUntil('2026-11-22 14:30:05');
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]).toEqual([2026, 10, 22, 14, 30, 5]);
  });

  it.each(['yesterday', '2026-13-01 00:00:00', '2026-11-22 25:00:00', '2026/11/22 10:00'])('refuses %s with the accepted forms', (text) => {
    expect(() => parseUntil(text)).toThrow(/is not a time ebr understands/);
  });
});
