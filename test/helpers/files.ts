/** Files as the restore tests compare them: by digest, and what ebr may never leave beside them. */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';

export const sha256File = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Names in dir that a restore's temps or set-aside files would have (`.ebr-restore-…`, `.ebr-old-…`). */
export const ebrLeftovers = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes('.ebr-'));
