/**
 * Restore, full or partial: every byte read back is checked against its digest into a file beside its
 * final name; only when all of them check out are they renamed into place (see swap.ts); then the
 * adapter finishes (labels, recovery settings, roll-forward, integrity checks).
 */
import { chmod, chown, lchown, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { ArchivedChunk, RestoreOutcome, RestorePlan } from '../adapter-api.js';
import type { ArchiveReader } from '../archive/archive-target.js';
import { copyWithDigest } from '../archive/digest-copy.js';
import { FileSink } from '../archive/file-sink.js';
import type { Manifest, ManifestMember } from '../archive/manifest.js';
import { findBackup } from '../catalog/backups.js';
import { now, type Catalog } from '../catalog/catalog.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted } from '../errors.js';
import type { BackupMeta } from '../model.js';
import { parseUntil } from '../util/time.js';
import { adapterOf, instanceContext, targetOf } from './context.js';
import { countedBytes, progressMeter, type ProgressListener } from './progress.js';
import { swapIn, type StagedFile } from './swap.js';

export interface RestoreOptions {
  config: Config;
  instance: InstanceConfig;
  catalog: Catalog;
  backupId?: string;
  partial?: string[];
  to?: string;
  until?: string;
  signal: AbortSignal;
  onProgress?: ProgressListener;
}

export interface RestoreResult extends RestoreOutcome {
  backupId: string;
  mode: 'full' | 'partial';
  spaces: string[];
  files: number;
  bytes: number;
  targetDir?: string;
}

export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const { catalog: cat, instance, signal } = o;
  const adapter = adapterOf(instance);
  const backup = findBackup(cat, o.backupId ?? 'latest', instance.name);
  if (backup.status !== 'complete') {
    throw new EbrError('unknownBackup', `backup ${backup.id} is ${backup.status}, not complete; it cannot be restored`, {
      hint: 'pick a complete backup from `ebr list`, or say --backup latest',
      context: { instance: instance.name, backupId: backup.id },
    });
  }
  if (backup.removed_at) {
    throw new EbrError('unknownBackup', `backup ${backup.id} was removed by retention on ${backup.removed_at}; its archive is gone`, {
      hint: 'pick a backup that is still kept from `ebr list`, or say --backup latest',
      context: { instance: instance.name, backupId: backup.id },
    });
  }
  const ctx = { instance: instance.name, backupId: backup.id };
  if (o.until && !adapter.capabilities.pointInTimeRestore) {
    throw new EbrError('usage', `the ${adapter.vendor} adapter cannot roll forward to a point in time; --until is not available`, { hint: 'leave out --until to restore the backup as taken', context: ctx });
  }
  const until = o.until ? parseUntil(o.until) : undefined;
  const reader = await targetOf(instance).open({ instance: instance.name, backupId: backup.id });
  const manifest = await reader.readManifest();
  const requested = chooseSpaces(manifest, o.partial, ctx);
  const mode = o.partial?.length ? 'partial' : 'full';
  const meta = await readMeta(reader, manifest);
  const plan: RestorePlan = {
    backupId: backup.id,
    instance: instance.name,
    mode,
    requested,
    spaces: manifest.spaces.map((s) => ({ ...s, chunks: manifest.members.filter((m) => m.space === s.name).map(toChunk) })),
    ...(o.to ? { targetDir: path.resolve(o.to) } : {}),
    ...(until ? { until } : {}),
    meta,
  };
  const restorer = await adapter.restorer(instanceContext(o.config, instance), plan);
  const toWrite = restorer.spacesToWrite?.(requested) ?? requested;
  const restoreRow = cat.db
    .prepare("INSERT INTO restores (backup_id, mode, spaces, target_dir, until, started_at, status) VALUES (?, ?, ?, ?, ?, ?, 'running')")
    .run(backup.id, mode, JSON.stringify(requested), plan.targetDir ?? null, until?.toISOString() ?? null, now()).lastInsertRowid;
  const tag = backup.id.slice(-4) + process.pid;
  const staged: StagedFile[] = [];
  try {
    await restorer.check(signal);
    if (plan.targetDir) await mkdir(plan.targetDir, { recursive: true });
    const members = manifest.members.filter((m) => toWrite.includes(m.space));
    const meter = progressMeter('restore', members.reduce((a, m) => a + m.size, 0), o.onProgress);
    for (const space of toWrite) {
      await extractSpace(reader, space, members.filter((m) => m.space === space), (m) => restorer.destinationOf(toChunk(m)), restorer.sideFilesOf, tag, staged, meter, signal, ctx);
    }
    meter.done();
    await swapIn(staged, tag);
    const outcome = await restorer.finish(signal);
    cat.db.prepare("UPDATE restores SET status = 'complete', finished_at = ? WHERE id = ?").run(now(), restoreRow);
    return { backupId: backup.id, mode, spaces: requested, files: staged.length, bytes: meter.bytesDone, ...(plan.targetDir ? { targetDir: plan.targetDir } : {}), ...outcome };
  } catch (err) {
    await Promise.all(staged.map((f) => rm(f.temp, { force: true }).catch(() => undefined)));
    const e = asEbrError(err, 'restore', ctx);
    cat.db.prepare("UPDATE restores SET status = 'failed', finished_at = ?, error = ? WHERE id = ?").run(now(), JSON.stringify(e.toJSON()), restoreRow);
    throw e;
  }
}

/** Full: every space. Partial: the named ones, known and not critical. */
function chooseSpaces(manifest: Manifest, partial: string[] | undefined, ctx: Record<string, unknown>): string[] {
  const all = manifest.spaces.map((s) => s.name);
  if (!partial?.length) return all;
  const unknown = partial.filter((p) => !all.includes(p));
  if (unknown.length) {
    throw new EbrError('unknownSpace', `backup ${manifest.backupId} has no space named ${unknown.join(', ')}`, {
      hint: `known spaces: ${all.join(', ')}`,
      context: { ...ctx, space: unknown[0] },
    });
  }
  const critical = manifest.spaces.filter((s) => s.critical && partial.includes(s.name)).map((s) => s.name);
  if (critical.length) {
    throw new EbrError('criticalSpace', `space ${critical.join(', ')} is critical: the server cannot start without it, so it is never restored on its own`, {
      hint: `restore the whole instance (leave out --partial), or name only non-critical spaces: ${manifest.spaces.filter((s) => !s.critical).map((s) => s.name).join(', ') || '(none)'}`,
      context: { ...ctx, space: critical[0] },
    });
  }
  return [...new Set(partial)];
}

async function readMeta(reader: ArchiveReader, manifest: Manifest): Promise<BackupMeta> {
  const files: Record<string, Buffer> = {};
  for (const name of manifest.metaFiles) files[name] = await reader.readMeta(name);
  return { files, ...manifest.log, ...(manifest.details ? { details: manifest.details } : {}) };
}

function toChunk(m: ManifestMember): ArchivedChunk {
  const { stream: _s, offset: _o, ...chunk } = m;
  return chunk;
}

async function extractSpace(
  reader: ArchiveReader,
  space: string,
  expected: ManifestMember[],
  destinationOf: (m: ManifestMember) => string,
  sideFilesOf: ((dest: string) => string[]) | undefined,
  tag: string,
  staged: StagedFile[],
  meter: { add(n: number, space?: string): void },
  signal: AbortSignal,
  ctx: Record<string, unknown>,
): Promise<void> {
  const byName = new Map(expected.map((m) => [m.name, m]));
  const seen = new Set<string>();
  for await (const { header, body } of reader.readSpace(space, signal)) {
    throwIfAborted(signal, { ...ctx, phase: 'restore', space });
    const m = byName.get(header.name);
    if (!m) throw damaged(`space ${space} holds a member ${header.name} that the manifest does not list`, space, header.name, ctx);
    seen.add(m.name);
    const dest = destinationOf(m);
    if (m.type === 'directory') {
      await mkdir(dest, { recursive: true, mode: m.mode ?? 0o700 });
      await applyAttributes(dest, m, false);
      continue;
    }
    await mkdir(path.dirname(dest), { recursive: true });
    const temp = `${dest}.ebr-restore-${tag}`;
    if (m.type === 'symlink') {
      await rm(temp, { force: true });
      await symlink(m.linkTarget ?? '', temp);
      await applyAttributes(temp, m, true);
    } else {
      const sink = new FileSink(temp);
      let got;
      try {
        got = await copyWithDigest(countedBytes(body, (n) => meter.add(n, space)), (b) => sink.write(b), undefined, signal, m.name);
        await sink.close();
      } catch (err) {
        sink.destroy();
        await rm(temp, { force: true });
        throw err;
      }
      staged.push({ temp, dest, sideFiles: sideFilesOf?.(dest) ?? [] });
      if (got.size !== m.size || got.sha256 !== m.sha256) {
        throw damaged(`member ${m.name} of space ${space} does not match its digest (read ${got.size} bytes, sha256 ${got.sha256.slice(0, 16)}…; the manifest says ${m.size} bytes, ${m.sha256.slice(0, 16)}…)`, space, m.name, ctx);
      }
      await applyAttributes(temp, m, false);
      continue;
    }
    staged.push({ temp, dest, sideFiles: [] });
  }
  const missing = expected.filter((m) => !seen.has(m.name));
  if (missing.length) throw damaged(`space ${space} lacks ${missing.length} member(s) the manifest lists, first ${missing[0]!.name}`, space, missing[0]!.name, ctx);
}

function damaged(message: string, space: string, member: string, ctx: Record<string, unknown>): EbrError {
  return new EbrError('digestMismatch', message, {
    hint: 'nothing was replaced; the archive is damaged — restore from another backup (`ebr list`) and run `ebr verify` on this one',
    context: { ...ctx, phase: 'restore', space, member },
  });
}

async function applyAttributes(p: string, m: ManifestMember, isLink: boolean): Promise<void> {
  if (process.getuid?.() === 0 && m.uid !== undefined && m.gid !== undefined) await (isLink ? lchown : chown)(p, m.uid, m.gid);
  if (isLink) return;
  if (m.mode !== undefined) await chmod(p, m.mode);
  if (m.mtimeMs !== undefined) await utimes(p, new Date(), new Date(m.mtimeMs));
}
