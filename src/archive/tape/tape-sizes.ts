/** Block sizes of tape targets. */
import { z } from 'zod';
import { sizeSetting } from '../../config/sizes.js';

export { sizeSetting };

/** What a tape block may be: whole 512-byte sectors, large enough for a label, small enough for the st driver's buffer. */
export const minBlockSize = 4096;
export const maxBlockSize = 16 << 20;
export const defaultBlockSize = 256 << 10;

export function blockSizeSetting() {
  return sizeSetting()
    .pipe(
      z
        .number()
        .int()
        .min(minBlockSize, `at least ${minBlockSize} bytes`)
        .max(maxBlockSize, 'at most 16MiB')
        .refine((n) => n % 512 === 0, 'a multiple of 512 bytes'),
    )
    .default(defaultBlockSize);
}
