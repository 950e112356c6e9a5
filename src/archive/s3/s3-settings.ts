/**
 * The keys of `target:` with `type: s3`, and where a backup's objects lie in the bucket. Credentials
 * are not among the keys: the AWS SDK's default chain finds them (environment, shared files, instance
 * roles), so they never reach the config, the catalog (which journals these settings), logs or argv.
 */
import { z } from 'zod';
import { sizeSetting } from '../../config/sizes.js';
import { EbrError } from '../../errors.js';
import type { BackupRef } from '../archive-target.js';

const mib = 1 << 20;
/** S3's limits on a multipart upload's parts (the last one may be smaller). */
const minPartSize = 5 * mib;
const maxPartSize = 5 * 1024 * mib;

export const s3Settings = z
  .object({
    type: z.string(),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name: 3 to 63 lowercase letters, digits, "." and "-"'),
    /** Put before every key; a prefix that does not end in "/" gets one (`ebr` → `ebr/<instance>/…`). */
    prefix: z
      .string()
      .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'a key prefix such as ebr/ (no leading "/", no "..")')
      .default(''),
    /** An S3-compatible server (MinIO, Ceph, Garage…); AWS when absent. */
    endpoint: z.string().url().optional(),
    region: z.string().min(1).default('us-east-1'),
    /** `http://host/bucket/key` instead of `http://bucket.host/key`: what most S3-compatible servers need. */
    forcePathStyle: z.boolean().optional(),
    /** Every object is written with this retention (the bucket must have Object Lock enabled). */
    objectLock: z.object({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: z.number().int().positive().max(36500) }).strict().optional(),
    /** Bytes per multipart part; each stream holds about queueSize + 2 parts in memory. */
    partSize: sizeSetting()
      .pipe(z.number().int().min(minPartSize, 'at least 5 MiB (the S3 minimum)').max(maxPartSize, 'at most 5 GiB (the S3 maximum)'))
      .default(16 * mib),
    /** Parts of one stream uploaded at once. */
    queueSize: z.number().int().min(1).max(64).default(4),
  })
  .strict();

export type S3Settings = z.output<typeof s3Settings>;
export type S3SettingsInput = z.input<typeof s3Settings>;

/** The prefix as keys use it: empty, or ending in "/". */
export function rootPrefix(s: Pick<S3Settings, 'prefix'>): string {
  return s.prefix === '' || s.prefix.endsWith('/') ? s.prefix : `${s.prefix}/`;
}

/** `<prefix><instance>/`: the instance's backups and its log stores. */
export function instanceKey(s: S3Settings, instance: string): string {
  return `${rootPrefix(s)}${plainName(instance, 'instance')}/`;
}

/** `<prefix><instance>/<backupId>/`: every object of one backup, and nothing else, lies under it. */
export function backupKey(s: S3Settings, ref: BackupRef): string {
  return `${instanceKey(s, ref.instance)}${plainName(ref.backupId, 'backup id')}/`;
}

export function urlOf(s: S3Settings, key: string): string {
  return `s3://${s.bucket}/${key}`;
}

/** Instance names and backup ids become key parts: no separators and no dot-dot, so one backup's prefix never holds another's. */
function plainName(name: string, what: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@+-]*$/.test(name) || name.includes('..')) {
    throw new EbrError('archive', `${what} "${name}" cannot be a part of an S3 key`, { hint: 'names may hold letters, digits and _ . @ + -, starting with a letter or digit' });
  }
  return name;
}

/** The retention every object of one backup (or one log) is written with, from now. */
export function objectLockParams(s: S3Settings, from = new Date()): { ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE'; ObjectLockRetainUntilDate?: Date } {
  if (!s.objectLock) return {};
  return { ObjectLockMode: s.objectLock.mode, ObjectLockRetainUntilDate: new Date(from.getTime() + s.objectLock.days * 86_400_000) };
}
