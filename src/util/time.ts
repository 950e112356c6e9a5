/** `--until TIME`: ISO 8601, or what now() prints in PostgreSQL and MariaDB; no offset means local time. */
import { EbrError } from '../errors.js';

const sqlish = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/;

export function parseUntil(text: string): Date {
  const m = sqlish.exec(text.trim());
  if (!m) throw bad(text);
  const [, y, mo, d, h, mi, s = '0', frac = '0', tz] = m;
  const ms = Number(`0.${frac}`) * 1000;
  let date: Date;
  if (tz === undefined) {
    date = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  } else {
    const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
    const offsetMin = tz === 'Z' ? 0 : (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + (tz.length > 3 ? Number(tz.slice(-2)) : 0));
    date = new Date(utc - offsetMin * 60_000);
  }
  if (Number.isNaN(date.getTime()) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) throw bad(text);
  return date;
}

function bad(text: string): EbrError {
  return new EbrError('usage', `--until ${JSON.stringify(text)} is not a time ebr understands`, {
    hint: 'use ISO 8601 (2026-11-22T14:30:00Z) or YYYY-MM-DD HH:MM:SS[.ffffff][±HH[:MM]]; without an offset the local time zone applies',
  });
}
