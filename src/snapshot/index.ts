/**
 * The snapshot providers ebr knows, by the name used in `snapshot.provider`, each registered with the
 * schema of the keys its `snapshot:` section takes (the config refuses any other key, naming these).
 */
import type { z } from 'zod';
import type { SnapshotProvider, SnapshotSettings } from './snapshot-provider.js';
import { btrfsProvider, btrfsSettings } from './btrfs-provider.js';
import { copyProvider, copySettings } from './copy-provider.js';
import { lvmProvider, lvmSettings } from './lvm-provider.js';
import { reflinkProvider, reflinkSettings } from './reflink-provider.js';
import { zfsProvider, zfsSettings } from './zfs-provider.js';
import { replicaSettings } from './replica-settings.js';

type ProviderFactory = (settings: SnapshotSettings) => SnapshotProvider;

const registered: Record<string, { create: ProviderFactory; settings: z.AnyZodObject }> = {
  copy: { create: copyProvider, settings: copySettings },
  reflink: { create: reflinkProvider, settings: reflinkSettings },
  btrfs: { create: (settings) => btrfsProvider(settings), settings: btrfsSettings },
  lvm: { create: (settings) => lvmProvider(settings), settings: lvmSettings },
  zfs: { create: (settings) => zfsProvider(settings), settings: zfsSettings },
  // A split mirror: the workflow freezes the replica with its `freeze` provider (see replica-settings.ts).
  replica: {
    create: () => {
      throw new Error('snapshot.provider replica is resolved to its freeze provider by the workflow');
    },
    settings: replicaSettings,
  },
};

export const snapshotProviders: Record<string, ProviderFactory> = Object.fromEntries(Object.entries(registered).map(([k, v]) => [k, v.create]));

/** The schema of each provider's `snapshot:` section, `provider` included. */
export const snapshotSettingsSchemas: Record<string, z.AnyZodObject> = Object.fromEntries(Object.entries(registered).map(([k, v]) => [k, v.settings]));
