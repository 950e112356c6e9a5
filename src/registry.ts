/** The one place where adapters, snapshot providers and targets are looked up by name. */
import type { DbmsAdapter } from './adapter-api.js';
import { adapters } from '../adapters/index.js';
import { archiveTargets } from './archive/index.js';
import { snapshotProviders } from './snapshot/index.js';
import type { SnapshotProvider, SnapshotSettings } from './snapshot/snapshot-provider.js';
import type { ArchiveTarget, TargetSettings } from './archive/archive-target.js';

const byVendor = new Map<string, DbmsAdapter>();
for (const a of adapters) {
  if (byVendor.has(a.vendor)) throw new Error(`two adapters register the vendor name ${a.vendor}`);
  byVendor.set(a.vendor, a as DbmsAdapter);
}

export function findAdapter(vendor: string): DbmsAdapter | undefined {
  return byVendor.get(vendor);
}
export function adapterNames(): string[] {
  return [...byVendor.keys()];
}
export function providerNames(): string[] {
  return Object.keys(snapshotProviders);
}
export function targetNames(): string[] {
  return Object.keys(archiveTargets);
}
export function snapshotProviderFor(settings: SnapshotSettings): SnapshotProvider {
  return snapshotProviders[settings.provider]!(settings);
}
export function archiveTargetFor(settings: TargetSettings): ArchiveTarget {
  return archiveTargets[settings.type]!(settings);
}
