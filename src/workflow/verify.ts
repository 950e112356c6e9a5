/** Re-reads a backup's archive and checks the manifest and every member against the catalog's record; names the damaged space and member. */
import { codecForReading } from '../archive/codec/index.js';
import { spaceReadOptions } from '../archive/coded-space.js';
import { digestOf } from '../archive/digest-copy.js';
import { findBackup } from '../catalog/backups.js';
import { membersOf } from '../catalog/discovery.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError } from '../errors.js';
import { targetOf } from './context.js';
import { manifestProblems, metaProblem } from './archive-trust.js';
import { chainLink } from './restore-chain.js';
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
  const file = await reader.readManifestFile();
  const manifest = file.manifest;
  // The archive is compared with what the catalog recorded at seal before its own digests are believed.
  const damaged: Damage[] = manifestProblems(o.catalog, backup, file);
  // A missing or wrong key is not damage: it is refused, naming the key the backup needs.
  const codec = await codecForReading(manifest.codec, o.instance);
  for (const name of manifest.metaFiles) {
    const data = await reader.readMeta(name).catch((err: Error) => err);
    let problem = data instanceof Error ? `cannot read meta/${name}: ${data.message}` : metaProblem(backup, name, data);
    if (!problem && !(data instanceof Error)) problem = await codec.decodeBuffer(data, `meta/${name}`).then(() => undefined, (err: Error) => err.message);
    if (problem) damaged.push({ space: '(meta)', member: name, problem });
  }
  // An incremental restores only with every backup of its chain: each must still be complete and kept.
  for (const id of manifest.chain ?? []) {
    const { why } = chainLink(o.catalog, id, backup.instance);
    if (why) damaged.push({ space: '(chain)', member: id, problem: `this ${manifest.type} backup reads blocks from backup ${id}, which ${why}` });
  }
  const recorded = new Map(membersOf(o.catalog, backup.id).map((m) => [m.name, m]));
  const meter = progressMeter('verify', manifest.members.reduce((a, m) => a + m.size, 0), o.onProgress);
  let members = 0;
  for (const space of manifest.spaces) {
    const expected = new Map(manifest.members.filter((m) => m.space === space.name).map((m) => [m.name, m]));
    const seen = new Set<string>();
    try {
      for await (const { header, body } of reader.readSpace(space.name, o.signal, spaceReadOptions(space, codec))) {
        const m = expected.get(header.name);
        if (!m) {
          damaged.push({ space: space.name, member: header.name, problem: 'not listed in the manifest' });
          for await (const _ of body);
          continue;
        }
        seen.add(m.name);
        members++;
        const got = await digestOf(countedBytes(body, (n) => meter.add(n, space.name)), o.signal);
        // The catalog's digest where it has one: an edited manifest must not make damaged bytes look right.
        // An incremental's body holds only its changed blocks: its digest is the (catalog-checked) manifest's.
        const want = m.body ?? recorded.get(m.name) ?? m;
        const by = m.body ? 'the manifest says (changed blocks only)' : recorded.has(m.name) ? 'the catalog recorded' : 'manifest says';
        if (got.size !== want.size) damaged.push({ space: space.name, member: m.name, problem: `size ${got.size}, ${by} ${want.size}` });
        else if (got.sha256 !== want.sha256) damaged.push({ space: space.name, member: m.name, problem: `sha256 ${got.sha256}, ${by} ${want.sha256}` });
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
