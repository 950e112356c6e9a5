/** The shape of ebr.yaml, apart from each adapter's own key, which its adapter validates. */
import { z } from 'zod';
import { sizeSetting } from './sizes.js';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "." and "-", starting with a letter or digit');

// snapshot: and target: keep their other keys here; each provider and target has its own schema in the
// registry, and load.ts checks the section against it (refusing any key it does not name).
export const snapshotSchema = z
  .object({
    provider: z.string().default('copy'),
    staging: z.string().optional(),
  })
  .passthrough();

export const targetSchema = z
  .object({
    type: z.string(),
    /** Local targets' directory; an object store names its bucket instead (each target's schema says which). */
    path: z.string().optional(),
  })
  .passthrough();

/** How space streams, meta files and logs are stored: compressed per stream, the digest over the original bytes. */
export const compressionSchema = z
  .object({
    type: z.enum(['zstd', 'lz4', 'gzip', 'none']),
    level: z.number().int().optional(),
  })
  .strict();

/** The user's 256-bit key: a file holding it, or the key itself through an `${ENV}` reference (hex or base64). */
export const encryptionSchema = z
  .object({
    keyFile: z.string().optional(),
    key: z.string().optional(),
  })
  .strict()
  .refine((e) => (e.keyFile === undefined) !== (e.key === undefined), 'give exactly one of keyFile and key');

/**
 * Which backups stay (the rules add up: a backup any rule keeps stays) and how far back `--until`
 * reaches (logDays); see src/schedule/retention-policy.ts.
 */
const count = z.number().int().positive();
export const retentionSchema = z
  .object({
    full: count.optional(),
    days: count.optional(),
    daily: count.optional(),
    weekly: count.optional(),
    monthly: count.optional(),
    logDays: count.optional(),
  })
  .strict()
  .refine((r) => Object.keys(r).length > 0, 'give at least one of full, days, daily, weekly, monthly, logDays');

/** `ebr log agent`: archive_command spools each log durably, a resident agent stores them (docs/log-agent.md). */
export const logAgentSchema = z
  .object({
    /** The spool directory (writable by the server's OS user); default: log-spool/<instance> beside the catalog. */
    spool: z.string().optional(),
    /** Logs stored at once (parallel uploads for remote targets). */
    parallel: z.number().int().min(1).max(64).default(4),
    /** How often the agent looks at the spool besides being woken by a new file. */
    pollMs: z.number().int().min(10).max(60_000).default(1_000),
    /** An agent that archive_command started exits after this long with nothing to do (0: never). */
    idleExitMs: z.number().int().min(0).default(300_000),
    /** For adapters whose logs are copied (sync, e.g. binlogs): how often the agent syncs (0: never). */
    syncEveryMs: z.number().int().min(0).default(0),
  })
  .strict();

export type LogAgentSettings = z.infer<typeof logAgentSchema>;

export const instanceSchema = z
  .object({
    adapter: z.string(),
    snapshot: snapshotSchema.default({ provider: 'copy' }),
    target: targetSchema,
    maxBlockMs: z.number().int().positive().max(3_600_000).default(10_000),
    /** Spaces streamed at once; two readers keep one disk busier than one. */
    parallelStreams: z.number().int().min(1).max(64).default(2),
    schedule: z.string().optional(),
    /** cron for copying finished logs into the log archive between backups (adapters whose logs have sync). */
    logSchedule: z.string().optional(),
    /** cron for `ebr drill` of the latest backup (restore into scratch, start, check, remove). */
    drillSchedule: z.string().optional(),
    retention: retentionSchema.optional(),
    compression: compressionSchema.optional(),
    encryption: encryptionSchema.optional(),
    /** The stream phase's reads of the frozen copy, all streams together, in MB (10^6 bytes) per second; absent: unlimited (docs/io-policy.md). */
    ioLimitMBps: z.number({ invalid_type_error: 'a number of MB per second, e.g. 50' }).positive('a positive number of MB per second, e.g. 50; leave it out for no limit').max(1_000_000, 'at most 1000000 MB per second; leave it out for no limit').optional(),
    /** The I/O class ebr's threads read with while streaming (ionice): idle, best-effort (lowest level) or normal. */
    ioPriority: z.enum(['idle', 'best-effort', 'normal']).default('idle'),
    logAgent: logAgentSchema.optional(),
    /** Block digests of every file, the unit of incremental backups and delta restores (docs/incremental.md); 0 records none. */
    blockSize: z.union([z.literal(0), sizeSetting()]).default(1 << 20),
    /** cron for incremental / differential backups, beside `schedule`'s full ones. */
    incrSchedule: z.string().optional(),
    diffSchedule: z.string().optional(),
  })
  .passthrough();

export const configSchema = z
  .object({
    catalog: z.string().default('./var/catalog.db'),
    instances: z.record(name, instanceSchema).refine((o) => Object.keys(o).length > 0, 'at least one instance is needed'),
    /** Where drills restore to (a directory of their own under it each time); default: drills/ beside the catalog. */
    drill: z.object({ scratch: z.string().optional() }).strict().optional(),
    /** Monitoring: a Prometheus textfile (node_exporter's textfile collector) rewritten by `ebr status` and the daemon. */
    status: z.object({ textfile: z.string().optional() }).strict().optional(),
    /**
     * Consistency groups across instances: backed up inside one window (every member blocked before any
     * is frozen, every member frozen before any is released) and restored to one instant.
     */
    groups: z
      .record(
        name,
        z
          .object({
            instances: z.array(name).min(2, 'a group needs at least two instances'),
            /** The one window of the whole group, from the first block to the last unblock. */
            maxBlockMs: z.number().int().positive().optional(),
            /** cron for `ebr daemon`. */
            schedule: z.string().optional(),
          })
          .strict(),
      )
      .optional(),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
