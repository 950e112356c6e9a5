/**
 * `snapshot.provider: replica`: not a way of freezing storage but the choice to back up from a replica
 * of the instance (a split mirror). The replica's own files are frozen by the `freeze` provider; the
 * split itself (pausing the replica) is the adapter's (DbmsAdapter.mirror).
 */
import { z } from 'zod';
import type { SnapshotSettings } from './snapshot-provider.js';

export const replicaSettings = z
  .object({
    provider: z.string(),
    /** The replica's connection, in the adapter's own keys; whatever is left out is the instance's. */
    replica: z.record(z.unknown()),
    /** How the replica's files are frozen: a provider name, or its whole section ({ provider: btrfs, … }). */
    freeze: z.union([z.string(), z.record(z.unknown())]).default('copy'),
    /** wait: the backup ends when the replica caught up; background: when it is resumed. */
    resync: z.enum(['wait', 'background']).default('wait'),
    /** A replica further behind than this is refused before the split. */
    maxLagMs: z.number().int().positive().default(30_000),
    /** Where copy/reflink put the frozen files (as for those providers). */
    staging: z.string().optional(),
  })
  .strict();

export type ReplicaSettings = z.infer<typeof replicaSettings>;

/** The freeze provider's own section. */
export function freezeSettingsOf(s: SnapshotSettings): SnapshotSettings {
  const freeze = (s.freeze ?? 'copy') as string | Record<string, unknown>;
  const section: SnapshotSettings = typeof freeze === 'string' ? { provider: freeze } : { provider: String(freeze.provider ?? 'copy'), ...freeze };
  if (section.staging === undefined && s.staging !== undefined) section.staging = s.staging;
  return section;
}
