/** The shape of ebr.yaml, apart from each adapter's own key, which its adapter validates. */
import { z } from 'zod';

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
    path: z.string(),
  })
  .passthrough();

export const instanceSchema = z
  .object({
    adapter: z.string(),
    snapshot: snapshotSchema.default({ provider: 'copy' }),
    target: targetSchema,
    maxBlockMs: z.number().int().positive().max(3_600_000).default(10_000),
    /** Spaces streamed at once; two readers keep one disk busier than one. */
    parallelStreams: z.number().int().min(1).max(64).default(2),
    schedule: z.string().optional(),
    /** cron for copying finished logs into the log archive between backups (adapters with syncLogs). */
    logSchedule: z.string().optional(),
    retention: z.object({ full: z.number().int().positive() }).strict().optional(),
  })
  .passthrough();

export const configSchema = z
  .object({
    catalog: z.string().default('./var/catalog.db'),
    instances: z.record(name, instanceSchema).refine((o) => Object.keys(o).length > 0, 'at least one instance is needed'),
  })
  .strict();

export type RawConfig = z.infer<typeof configSchema>;
