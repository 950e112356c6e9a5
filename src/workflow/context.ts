/** Turns a configured instance into what its adapter, provider and target need. */
import os from 'node:os';
import path from 'node:path';
import type { DbmsAdapter, InstanceContext } from '../adapter-api.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { codecForBackup, codecForReading } from '../archive/codec/index.js';
import { codedLogStore } from '../logs/coded-log-store.js';
import type { LogStore } from '../logs/log-store.js';
import { ebrArgv } from '../util/ebr-self.js';
import { freezeSettingsOf } from '../snapshot/replica-settings.js';
import { archiveTargetFor, findAdapter, snapshotProviderFor } from '../registry.js';
import { localStateDir } from '../catalog/catalog.js';

export function adapterOf(instance: InstanceConfig): DbmsAdapter {
  const adapter = findAdapter(instance.adapter);
  if (!adapter) throw new EbrError('config', `instance ${instance.name} names adapter ${instance.adapter}, which ebr does not know`);
  return adapter;
}

export function instanceContext(config: Config, instance: InstanceConfig): InstanceContext {
  return {
    name: instance.name,
    settings: instance.settings,
    resolvePath: instance.resolvePath,
    configFile: config.file,
    logStore: (kind) => logStoreOf(instance, kind),
    ebrArgv: (args) => ebrArgv(config.file, args),
  };
}

/** The copy provider stages beside the catalog unless told otherwise, never in a shared /tmp. */
export function providerOf(config: Config, instance: InstanceConfig) {
  // A split mirror freezes the replica's files with its freeze provider.
  const section = instance.mirror ? freezeSettingsOf(instance.snapshot) : instance.snapshot;
  const staging = section.staging ?? (section.provider === 'copy' ? path.join(localStateDir(config), 'staging') : undefined);
  return snapshotProviderFor({ ...section, ...(staging ? { staging } : {}) });
}

/** The session a backup runs on: the instance itself, or the replica it splits (snapshot.provider: replica). */
export function backupSession(config: Config, instance: InstanceConfig, signal: AbortSignal) {
  const adapter = adapterOf(instance);
  const ctx = instanceContext(config, instance);
  return instance.mirror ? adapter.mirror!.connect(ctx, instance.mirror, signal) : adapter.connect(ctx, signal);
}

export function targetOf(instance: InstanceConfig) {
  return archiveTargetFor(instance.target);
}

export function hostName(): string {
  return os.hostname();
}

/** The instance's log archive of one kind, on its target (beside the backups, wherever they are). */
export function logStoreOf(instance: InstanceConfig, kind: string): LogStore {
  const target = targetOf(instance);
  if (!target.logStore) {
    throw new EbrError('config', `the ${target.kind} target of instance ${instance.name} cannot hold a log archive`, {
      hint: 'use a target that keeps logs (dir, tar, s3, vtape) for an instance that archives its logs',
      context: { instance: instance.name },
    });
  }
  const encodes = (instance.compression !== undefined && instance.compression.type !== 'none') || instance.encryption !== undefined;
  // Always through the coded layer: a log written while the instance compressed or encrypted is read back as such later too.
  return codedLogStore(target.logStore(instance.name, kind), { encodes, forWriting: () => codecForBackup(instance), forReading: (stored) => codecForReading(stored, instance) }, { instance: instance.name, kind });
}
