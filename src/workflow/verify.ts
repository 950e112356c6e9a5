/** Re-reads a backup's archive and checks every member against its digest; names the damaged space and member. */
import { digestOf } from '../archive/digest-copy.js';
import { findBackup } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError } from '../errors.js';
import { targetOf } from './context.js';
import { countedBytes, progressMeter, type ProgressListener } from './progress.js';

export interface Damage {
  space: string;
  member: string;
  problem: string;
}

export interface VerifyResult {
  backupId: string;
  instance: string;
  members: number;
  bytes: number;
  damaged: Damage[];
}

export async function runVerify(o: {
  catalog: Catalog;
  instance: InstanceConfig;
  backupId: string;
  signal: AbortSignal;
  onProgress?: ProgressListener;
}): Promise<VerifyResult> {
  const backup = findBackup(o.catalog, o.backupId, o.instance.name);
  const ctx = { instance: o.instance.name, backupId: backup.id, phase: 'verify' };
  const reader = await targetOf(o.instance).open({ instance: o.instance.name, backupId: backup.id });
  const manifest = await reader.readManifest();
  const meter = progressMeter('verify', manifest.members.reduce((a, m) => a + m.size, 0), o.onProgress);
  const damaged: Damage[] = [];
  let members = 0;
  for (const space of manifest.spaces) {
    const expected = new Map(manifest.members.filter((m) => m.space === space.name).map((m) => [m.name, m]));
    const seen = new Set<string>();
    try {
      for await (const { header, body } of reader.readSpace(space.name, o.signal)) {
        const m = expected.get(header.name);
        if (!m) {
          damaged.push({ space: space.name, member: header.name, problem: 'not listed in the manifest' });
          for await (const _ of body);
          continue;
        }
        seen.add(m.name);
        members++;
        const got = await digestOf(countedBytes(body, (n) => meter.add(n, space.name)), o.signal);
        if (got.size !== m.size) damaged.push({ space: space.name, member: m.name, problem: `size ${got.size}, manifest says ${m.size}` });
        else if (got.sha256 !== m.sha256) damaged.push({ space: space.name, member: m.name, problem: `sha256 ${got.sha256}, manifest says ${m.sha256}` });
      }
    } catch (err) {
      if (err instanceof EbrError && err.code === 'cancelled') throw err;
      damaged.push({ space: space.name, member: '(stream)', problem: asEbrError(err, 'archive', ctx).message });
    }
    for (const name of expected.keys()) {
      if (!seen.has(name) && !damaged.some((d) => d.space === space.name && d.member === '(stream)')) {
        damaged.push({ space: space.name, member: name, problem: 'missing from the archive' });
      }
    }
  }
  meter.done();
  return { backupId: backup.id, instance: o.instance.name, members, bytes: meter.bytesDone, damaged };
}
