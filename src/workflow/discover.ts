/** `ebr spaces`: what a backup would take, and whether the snapshot provider can freeze all of it. */
import type { Config, InstanceConfig } from '../config/load.js';
import { asEbrError } from '../errors.js';
import type { Space, Volume } from '../model.js';
import { volumesOf } from '../snapshot/volumes.js';
import { adapterOf, backupSession, providerOf } from './context.js';

export interface Discovery {
  instance: string;
  vendor: string;
  server: Record<string, unknown>;
  spaces: Space[];
  volumes: Volume[];
  snapshotProvider: string;
}

export async function discoverInstance(config: Config, instance: InstanceConfig, signal: AbortSignal): Promise<Discovery> {
  const adapter = adapterOf(instance);
  const provider = providerOf(config, instance);
  const ctx = { instance: instance.name };
  let session;
  try {
    session = await backupSession(config, instance, signal);
  } catch (err) {
    throw asEbrError(err, 'connect', { ...ctx, phase: 'connect' });
  }
  await using s = session;
  try {
    const server = await s.describe();
    const spaces = await s.discover(signal);
    const chunks = spaces.flatMap((x) => x.chunks);
    const volumes = volumesOf(chunks);
    await provider.check({ backupId: 'check', chunks, volumes }, signal);
    return { instance: instance.name, vendor: adapter.vendor, server, spaces, volumes, snapshotProvider: provider.kind };
  } catch (err) {
    throw asEbrError(err, 'discover', { ...ctx, phase: 'discover' });
  }
}
