/** The snapshot providers ebr knows, by the name used in `snapshot.provider`. */
import type { SnapshotProvider, SnapshotSettings } from './snapshot-provider.js';
import { btrfsProvider } from './btrfs-provider.js';
import { copyProvider } from './copy-provider.js';
import { lvmProvider } from './lvm-provider.js';
import { reflinkProvider } from './reflink-provider.js';
import { zfsProvider } from './zfs-provider.js';

export const snapshotProviders: Record<string, (settings: SnapshotSettings) => SnapshotProvider> = {
  copy: copyProvider,
  reflink: reflinkProvider,
  btrfs: (settings) => btrfsProvider(settings),
  lvm: (settings) => lvmProvider(settings),
  zfs: (settings) => zfsProvider(settings),
};
