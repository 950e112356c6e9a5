/**
 * The tar format (POSIX ustar with pax extended headers for long names, long link targets and numbers
 * that ustar's octal fields cannot hold: sizes from 8 GiB, uids and gids from 2^21, times outside 1970
 * to 2242), as GNU tar reads it. Such a number is also written in GNU's base-256 form in its field, so
 * a reader that skips pax headers still gets it right. Written by hand because it is 512-byte blocks
 * and nothing more, and the libraries measured here cost half of GNU tar's speed in per-chunk overhead.
 */
import type { MemberHeader } from './archive-target.js';

export const block = 512;

const typeFlag = { file: '0', symlink: '2', directory: '5' } as const;
const fromTypeFlag: Record<string, MemberHeader['type']> = { '0': 'file', '\0': 'file', '2': 'symlink', '5': 'directory' };

/** Bytes of zero padding after a member of the given size. */
export function padding(size: number): number {
  return (block - (size % block)) % block;
}

/** The header block(s) for one member: a pax header first when ustar's fields cannot hold it. */
export function encodeHeader(h: MemberHeader): Buffer {
  const name = h.type === 'directory' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  const pax: Record<string, string> = {};
  const nameBytes = Buffer.byteLength(name);
  let ustarName = name;
  let prefix = '';
  if (nameBytes > 100) {
    const split = splitName(name);
    if (split) [prefix, ustarName] = split;
    else {
      pax.path = name;
      ustarName = name.slice(0, 99);
    }
  }
  const size = h.type === 'file' ? h.size : 0;
  const uid = h.uid ?? 0;
  const gid = h.gid ?? 0;
  const mtime = Math.floor((h.mtimeMs ?? Date.now()) / 1000);
  // pax records win over the ustar fields in every reader that knows pax (GNU tar, bsdtar, Python).
  if (!fitsOctal(size, 12)) pax.size = String(size);
  if (!fitsOctal(uid, 8)) pax.uid = String(uid);
  if (!fitsOctal(gid, 8)) pax.gid = String(gid);
  if (!fitsOctal(mtime, 12)) pax.mtime = String(mtime);
  if (h.linkTarget && Buffer.byteLength(h.linkTarget) > 100) pax.linkpath = h.linkTarget;
  const main = ustarBlock({
    name: ustarName,
    prefix,
    mode: h.mode ?? (h.type === 'directory' ? 0o755 : 0o644),
    uid,
    gid,
    size,
    mtime,
    type: typeFlag[h.type],
    linkname: h.linkTarget && !pax.linkpath ? h.linkTarget : '',
  });
  if (Object.keys(pax).length === 0) return main;
  const body = Buffer.from(Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join(''));
  const paxHeader = ustarBlock({ name: `PaxHeader/${ustarName}`.slice(0, 100), prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, type: 'x', linkname: '' });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(rest) + 1;
  while (String(len).length + Buffer.byteLength(rest) !== len) len++;
  return `${len}${rest}`;
}

function splitName(name: string): [string, string] | undefined {
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return [prefix, rest];
  }
  return undefined;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(block);
  b.write(f.name, 0, 100);
  octal(b, f.mode & 0o7777, 100, 8);
  numeric(b, f.uid, 108, 8);
  numeric(b, f.gid, 116, 8);
  numeric(b, f.size, 124, 12);
  numeric(b, f.mtime, 136, 12);
  b.fill(' ', 148, 156);
  b.write(f.type, 156, 1);
  b.write(f.linkname, 157, 100);
  b.write('ustar\0', 257, 6);
  b.write('00', 263, 2);
  b.write(f.prefix, 345, 155);
  let sum = 0;
  for (let i = 0; i < block; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return b;
}

function octal(b: Buffer, value: number, at: number, len: number): void {
  b.write(`${value.toString(8).padStart(len - 1, '0')}\0`, at, len);
}

/** Whether a field of len bytes holds the value as len-1 octal digits and a NUL. */
function fitsOctal(value: number, len: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value < 8 ** (len - 1);
}

/**
 * Octal when it fits; else GNU's base-256 form: the first byte's high bit set, then the value in
 * two's complement, big-endian, over the whole field (0x80 leads a positive value, 0xff a negative one).
 */
function numeric(b: Buffer, value: number, at: number, len: number): void {
  if (fitsOctal(value, len)) return octal(b, value, at, len);
  if (!Number.isSafeInteger(value)) throw new Error(`${value} cannot be stored in a tar header`);
  let v = BigInt(value);
  if (v < 0n) v += 1n << BigInt(8 * len);
  for (let i = len - 1; i >= 0; i--) {
    b[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  b[at] = value < 0 ? 0xff : 0x80;
}

export interface DecodedHeader {
  header: MemberHeader;
  /** Bytes of header blocks consumed, pax included. */
  headerBytes: number;
}

/**
 * Decodes the header at the start of `buf` (which must hold the pax header and its body, if any,
 * plus the ustar block). Returns null at the end-of-archive zero block.
 */
export function decodeHeader(buf: Buffer, pax: Record<string, string> = {}): DecodedHeader | null | { needPax: number } {
  if (buf.length < block) throw new Error('truncated tar header');
  const b = buf.subarray(0, block);
  if (b.every((x) => x === 0)) return null;
  verifyChecksum(b);
  const type = String.fromCharCode(b[156]!);
  const size = readNumeric(b, 124, 12);
  if (type === 'x') {
    const bodyEnd = block + size;
    if (buf.length < bodyEnd + padding(size) + block) return { needPax: bodyEnd + padding(size) + block };
    const records = parsePax(buf.subarray(block, bodyEnd));
    const inner = decodeHeader(buf.subarray(bodyEnd + padding(size)), records);
    if (!inner || 'needPax' in inner) throw new Error('pax header not followed by a member');
    return { header: inner.header, headerBytes: inner.headerBytes + bodyEnd + padding(size) };
  }
  const kind = fromTypeFlag[type];
  if (!kind) throw new Error(`unsupported tar member type '${type}'`);
  const prefix = cstr(b, 345, 155);
  const name = pax.path ?? (prefix ? `${prefix}/${cstr(b, 0, 100)}` : cstr(b, 0, 100));
  const linkname = pax.linkpath ?? cstr(b, 157, 100);
  const header: MemberHeader = {
    name: kind === 'directory' ? name.replace(/\/$/, '') : name,
    type: kind,
    size: paxNumber(pax, 'size') ?? size,
    mode: readOctal(b, 100, 8),
    uid: paxNumber(pax, 'uid') ?? readNumeric(b, 108, 8),
    gid: paxNumber(pax, 'gid') ?? readNumeric(b, 116, 8),
    // pax times may carry a fraction (GNU tar writes nanoseconds); whole milliseconds are kept.
    mtimeMs: pax.mtime !== undefined ? Math.floor(paxNumber(pax, 'mtime')! * 1000) : readNumeric(b, 136, 12) * 1000,
    ...(linkname ? { linkTarget: linkname } : {}),
  };
  return { header, headerBytes: block };
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length) {
    const space = body.indexOf(0x20, i);
    if (space === -1) break;
    const len = Number(body.toString('utf8', i, space));
    if (!len) break;
    const rec = body.toString('utf8', space + 1, i + len - 1);
    const eq = rec.indexOf('=');
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

function cstr(b: Buffer, at: number, len: number): string {
  const s = b.subarray(at, at + len);
  const z = s.indexOf(0);
  return s.toString('utf8', 0, z === -1 ? len : z);
}

function readOctal(b: Buffer, at: number, len: number): number {
  const s = cstr(b, at, len).trim();
  return s ? parseInt(s, 8) : 0;
}

/** A numeric field in octal or in GNU's base-256 form (see numeric). */
function readNumeric(b: Buffer, at: number, len: number): number {
  const first = b[at]!;
  if ((first & 0x80) === 0) return readOctal(b, at, len);
  let v = BigInt(first & 0x7f);
  for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[at + i]!);
  if (first === 0xff) v -= 1n << BigInt(8 * len - 1);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new Error(`a numeric field at byte ${at} is out of range`);
  return Number(v);
}

function paxNumber(pax: Record<string, string>, key: string): number | undefined {
  const v = pax[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+(\.\d+)?$/.test(v) || !Number.isFinite(n)) throw new Error(`pax record ${key}=${v} is not a number`);
  return n;
}

function verifyChecksum(b: Buffer): void {
  const stored = readOctal(b, 148, 8);
  let sum = 0;
  for (let i = 0; i < block; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  if (sum !== stored) throw new Error('tar header checksum mismatch');
}
