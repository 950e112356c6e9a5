/** The snapshot providers ebr knows, by the name used in `snapshot.provider`. */
import type { SnapshotProvider, SnapshotSettings } from './snapshot-provider.js';
import { copyProvider } from './copy-provider.js';
import { reflinkProvider } from './reflink-provider.js';

export const snapshotProviders: Record<string, (settings: SnapshotSettings) => SnapshotProvider> = {
  copy: copyProvider,
  reflink: reflinkProvider,
};
