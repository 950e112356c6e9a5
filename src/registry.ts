/** The one place where adapters, snapshot providers and targets are looked up by name. */
import type { z } from 'zod';
import type { DbmsAdapter } from './adapter-api.js';
import { adapters as registered } from '../adapters/index.js';
import { archiveTargets, targetSettingsSchemas } from './archive/index.js';
import { snapshotProviders, snapshotSettingsSchemas } from './snapshot/index.js';
import type { SnapshotProvider, SnapshotSettings } from './snapshot/snapshot-provider.js';
import type { ArchiveTarget, TargetSettings } from './archive/archive-target.js';

const byVendor = new Map<string, DbmsAdapter>();
for (const a of registered) {
  if (byVendor.has(a.vendor)) throw new Error(`two adapters register the vendor name ${a.vendor}`);
  byVendor.set(a.vendor, a as DbmsAdapter);
}

export function findAdapter(vendor: string): DbmsAdapter | undefined {
  return byVendor.get(vendor);
}
/** Every registered adapter, in registration order. */
export function adapters(): DbmsAdapter[] {
  return [...byVendor.values()];
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
/** The keys (and values) a provider's `snapshot:` section takes; undefined for an unknown provider. */
export function snapshotSettingsOf(provider: string): z.AnyZodObject | undefined {
  return Object.hasOwn(snapshotSettingsSchemas, provider) ? snapshotSettingsSchemas[provider] : undefined;
}
/** The keys (and values) a target's `target:` section takes; undefined for an unknown type. */
export function targetSettingsOf(type: string): z.AnyZodObject | undefined {
  return Object.hasOwn(targetSettingsSchemas, type) ? targetSettingsSchemas[type] : undefined;
}
export function snapshotProviderFor(settings: SnapshotSettings): SnapshotProvider {
  return snapshotProviders[settings.provider]!(settings);
}
export function archiveTargetFor(settings: TargetSettings): ArchiveTarget {
  return archiveTargets[settings.type]!(settings);
}
