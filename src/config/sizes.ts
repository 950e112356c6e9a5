/** Sizes in config sections: bytes, or a string such as `64MiB`, `256 KiB`, `1.5GiB` (binary units). */
import { z } from 'zod';

const units: Record<string, number> = { '': 1, b: 1, kib: 1 << 10, mib: 1 << 20, gib: 1 << 30, tib: 2 ** 40 };

/** Bytes from a number or a size string; binary units only, so `64MiB` is exactly what a tape block count needs. */
export function parseSize(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(v);
  const unit = m ? units[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** A zod field for a size key: the config may say `65536`, `64KiB` or `64 KiB`; the target gets bytes. */
export function sizeSetting(): z.ZodEffects<z.ZodUnion<[z.ZodNumber, z.ZodString]>, number> {
  return z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'a size in bytes, or a number with KiB, MiB, GiB or TiB (like 64MiB)' });
      return z.NEVER;
    }
    return n;
  });
}
