/**
 * `ebr catalog rebuild`: the catalog read back from the archives, so losing it loses no backup. Every
 * archive of every instance in the config is listed by its target; a backup the catalog lacks is
 * recorded from its manifest.json (row, members, discovery), complete, with `rebuilt_at` set and the
 * digests of its manifest and meta files as found. Backups the catalog has are left alone; an archive
 * without a manifest (a backup that never completed) or with one that does not parse is reported and
 * skipped. The data itself is not read: `ebr verify` does that.
 */
import { createHash } from 'node:crypto';
import type { ListedArchive } from '../archive/archive-target.js';
import { parseManifest, type Manifest } from '../archive/manifest.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { throwIfAborted } from '../errors.js';
import { archiveTargetFor } from '../registry.js';
import { recordStreams } from './streams.js';
import { thisRunner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';

export interface RebuiltBackup {
  instance: string;
  backupId: string;
  location: string;
  /** When the backup started, from its manifest (present backups: from the catalog). */
  startedAt?: string;
}

export interface SkippedArchive {
  instance: string;
  /** The backup id the archive's directory names, when there is one. */
  backupId?: string;
  /** What was looked at: the manifest, the meta file, or the target. */
  path: string;
  reason: string;
}

export interface RebuildReport {
  catalog: string;
  /** Backups recorded from their archives now. */
  added: RebuiltBackup[];
  /** Backups the catalog already had: left as they were. */
  present: RebuiltBackup[];
  skipped: SkippedArchive[];
}

export async function rebuildCatalog(o: { config: Config; catalog: Catalog; instances?: InstanceConfig[]; signal: AbortSignal }): Promise<RebuildReport> {
  const report: RebuildReport = { catalog: o.catalog.name, added: [], present: [], skipped: [] };
  for (const instance of o.instances ?? Object.values(o.config.instances)) {
    throwIfAborted(o.signal, { instance: instance.name });
    const target = archiveTargetFor(instance.target);
    if (!target.list) {
      report.skipped.push({ instance: instance.name, path: instance.target.path ?? instance.target.type, reason: `a ${target.kind} target cannot list its archives` });
      continue;
    }
    for (const archive of await target.list(instance.name)) {
      throwIfAborted(o.signal, { instance: instance.name, backupId: archive.backupId });
      const ref = { instance: instance.name, backupId: archive.backupId, location: archive.location };
      if (o.catalog.db.prepare('SELECT 1 FROM backups WHERE id = ?').get(archive.backupId)) {
        report.present.push(ref);
        continue;
      }
      const found = await readArchive(archive, instance, (name) => target.open({ instance: instance.name, backupId: archive.backupId }).then((r) => r.readMeta(name)));
      if ('reason' in found) {
        report.skipped.push({ instance: instance.name, backupId: archive.backupId, ...found });
        continue;
      }
      try {
        recordRebuilt(o.catalog, { ...found, targetType: target.kind, location: archive.location });
      } catch (err) {
        // A manifest that parses but lacks what a row needs (hand-edited, or from a broken ebr).
        report.skipped.push({ instance: instance.name, backupId: archive.backupId, path: `${archive.location}/manifest.json`, reason: `the manifest cannot be recorded: ${(err as Error).message}` });
        continue;
      }
      report.added.push({ ...ref, startedAt: found.manifest.startedAt });
    }
  }
  // In the order the backups were taken: two ids of one second do not sort by time.
  report.added.sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.backupId.localeCompare(b.backupId));
  return report;
}

interface FoundBackup {
  manifest: Manifest;
  manifestSha256: string;
  metaSha256: Record<string, string>;
}

/** The manifest and the digests of manifest.json and of every meta file, or why the archive cannot be recorded. */
async function readArchive(
  archive: ListedArchive,
  instance: InstanceConfig,
  readMeta: (name: string) => Promise<Buffer>,
): Promise<FoundBackup | { path: string; reason: string }> {
  const file = `${archive.location}/manifest.json`;
  let bytes: Buffer | undefined;
  try {
    bytes = await archive.manifestBytes();
  } catch (err) {
    return { path: file, reason: `cannot read the manifest: ${(err as Error).message}` };
  }
  if (bytes === undefined) return { path: archive.location, reason: 'no manifest.json: a backup that never completed (a partial archive)' };
  let manifest: Manifest;
  try {
    manifest = parseManifest(bytes.toString('utf8'), file);
  } catch (err) {
    return { path: file, reason: `the manifest does not parse: ${(err as Error).message.replace(`${file}: `, '')}` };
  }
  if (manifest.backupId !== archive.backupId || manifest.instance !== instance.name) {
    return { path: file, reason: `the manifest is of backup ${manifest.backupId} of instance ${manifest.instance}, not of ${archive.backupId} of ${instance.name} where it lies` };
  }
  const metaSha256: Record<string, string> = {};
  for (const name of manifest.metaFiles ?? []) {
    try {
      metaSha256[name] = sha256(await readMeta(name));
    } catch (err) {
      return { path: `${archive.location}/meta/${name}`, reason: `meta file ${name}, named by the manifest, cannot be read: ${(err as Error).message}` };
    }
  }
  return { manifest, manifestSha256: sha256(bytes), metaSha256 };
}

/** The backup row, its members and its discovery rows, in one transaction. */
function recordRebuilt(cat: Catalog, b: FoundBackup & { targetType: string; location: string }): void {
  const m = b.manifest;
  const runner = thisRunner();
  const critical = new Map(m.spaces.map((s) => [s.name, s]));
  const fileBytes = m.members.reduce((n, x) => n + (x.type === 'file' ? x.size : 0), 0);
  cat.tx(() => {
    cat.db
      .prepare(
        `INSERT INTO instances (name, vendor, first_seen, last_seen) VALUES (?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET
           first_seen = CASE WHEN excluded.first_seen < instances.first_seen THEN excluded.first_seen ELSE instances.first_seen END,
           last_seen = CASE WHEN excluded.last_seen > instances.last_seen THEN excluded.last_seen ELSE instances.last_seen END`,
      )
      .run(m.instance, m.vendor, m.startedAt, m.finishedAt);
    cat.db
      .prepare(
        `INSERT INTO backups (id, instance, vendor, status, phase, started_at, finished_at, block_window_ms, window_steps, log_start, log_end, timeline,
           server, meta, snapshot_provider, target_type, location, bytes, members, runner_host, runner_pid, runner_start,
           manifest_sha256, meta_sha256, rebuilt_at, type, parent_id)
         VALUES (@id, @instance, @vendor, 'complete', 'complete', @started_at, @finished_at, @block_window_ms, @window_steps, @log_start, @log_end, @timeline,
           @server, @meta, @snapshot_provider, @target_type, @location, @bytes, @members, @runner_host, @runner_pid, @runner_start,
           @manifest_sha256, @meta_sha256, @rebuilt_at, @type, @parent_id)`,
      )
      .run({
        id: m.backupId,
        instance: m.instance,
        vendor: m.vendor,
        started_at: m.startedAt,
        finished_at: m.finishedAt,
        block_window_ms: m.blockWindowMs ?? null,
        window_steps: JSON.stringify(m.windowSteps ?? {}),
        log_start: m.log?.logStart ?? null,
        log_end: m.log?.logEnd ?? null,
        timeline: m.log?.timeline ?? null,
        server: JSON.stringify(m.server ?? {}),
        meta: JSON.stringify({ ...(m.details ?? {}), files: m.metaFiles ?? [] }),
        snapshot_provider: m.snapshotProvider,
        target_type: b.targetType,
        location: b.location,
        bytes: fileBytes,
        members: m.members.length,
        runner_host: runner.host,
        runner_pid: runner.pid,
        runner_start: runner.start,
        manifest_sha256: b.manifestSha256,
        meta_sha256: JSON.stringify(b.metaSha256),
        rebuilt_at: now(),
        type: m.type ?? 'full',
        parent_id: m.parent ?? null,
      });
    const member = cat.db.prepare('INSERT INTO members (backup_id, space, name, size, sha256, stream, offset) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const discovery = cat.db.prepare(
      'INSERT INTO discovery (backup_id, space, space_kind, critical, chunk, path, type, size, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const x of m.members) {
      member.run(m.backupId, x.space, x.name, x.size, x.sha256, x.stream, x.offset);
      const space = critical.get(x.space);
      discovery.run(m.backupId, x.space, space?.kind ?? 'space', space?.critical ? 1 : 0, x.name, x.path, x.type, x.size, x.details ? JSON.stringify(x.details) : null);
    }
    recordStreams(cat, m.backupId, m.spaces, m.codec);
  });
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
