/**
 * `s3`: the archive in a bucket of AWS S3 or an S3-compatible server, laid out as on disk:
 * `<prefix><instance>/<backupId>/spaces/<space>.tar`, `…/meta/<name>`, and `…/manifest.json`, written
 * last with one PutObject (it exists only whole, so its existence means the backup is complete).
 * Append-only: create() refuses a backup prefix that holds anything, and no object is ever written
 * twice. Space streams are multipart uploads (see s3-sink.ts) and may run in parallel.
 */
import { EbrError } from '../../errors.js';
import type { ArchiveReader, ArchiveTarget, ArchiveWriter, BackupRef, ListedArchive } from '../archive-target.js';
import { safeName } from '../backup-dir.js';
import { codedSpaceMembers, codedSpaceWriter } from '../coded-space.js';
import { manifestText, parseManifest, sha256Of, type ReadManifestFile } from '../manifest.js';
import { s3Connection, type S3Connection, type S3Options } from './s3-client.js';
import { anyUnder, getObjectBytes, listKeys, objectChunks, putObject } from './s3-objects.js';
import { s3LogStore } from './s3-log-store.js';
import { removeUnder } from './s3-remove.js';
import { backupKey, instanceKey, objectLockParams, urlOf, type S3Settings } from './s3-settings.js';
import { UploadSink } from './s3-sink.js';

export function s3Target(settings: S3Settings, options: S3Options = {}): ArchiveTarget {
  const conn = s3Connection(settings, options);
  const locationOf = (ref: BackupRef) => urlOf(settings, backupKey(settings, ref)).replace(/\/$/, '');
  const remove = (ref: BackupRef) => removeUnder(conn, backupKey(settings, ref), { instance: ref.instance, backupId: ref.backupId });
  return {
    kind: 's3',
    async create(ref) {
      const base = backupKey(settings, ref);
      if (await anyUnder(conn, base)) {
        throw new EbrError('archive', `an archive already exists at ${locationOf(ref)}; ebr never overwrites a backup`, {
          hint: `remove the objects under ${urlOf(settings, base)} by hand if they are garbage, or point target.prefix elsewhere`,
          context: { path: locationOf(ref), backupId: ref.backupId },
        });
      }
      return s3Writer(conn, ref, locationOf(ref), () => remove(ref));
    },
    async open(ref) {
      return s3Reader(conn, backupKey(settings, ref), locationOf(ref));
    },
    remove,
    list: (instance) => listArchives(conn, instance),
    locationOf,
    // A bucket has no free space to tell, but this is asked before the window: an unreachable endpoint, a
    // missing bucket or missing credentials fail the backup here, before the database is blocked.
    async freeSpace(ref) {
      await anyUnder(conn, backupKey(settings, ref));
      return undefined;
    },
    // The logs beside the backups: <prefix><instance>/<kind>/<name>, one PutObject per log.
    logStore: (instance, kind) => s3LogStore(settings, instance, kind, options),
  };
}

function s3Writer(conn: S3Connection, ref: BackupRef, location: string, removeAll: () => Promise<void>): ArchiveWriter {
  const base = backupKey(conn.settings, ref);
  // One retention date for every object of the backup, counted from its start.
  const lock = objectLockParams(conn.settings);
  const sinks: UploadSink[] = [];
  return {
    location,
    bytesWritten: () => sinks.reduce((n, s) => n + s.written, 0),
    async openSpace(space, codec) {
      const stream = `spaces/${safeName(space)}.tar`;
      const [{ storage }, client] = await Promise.all([conn.sdk(), conn.client()]);
      const sink = new UploadSink(conn, `${base}${stream}`, storage, client, lock);
      sinks.push(sink);
      return codedSpaceWriter(sink, stream, codec);
    },
    writeMeta: (name, data) => putObject(conn, `${base}meta/${safeName(name)}`, Buffer.from(data), { lock, contentType: 'application/octet-stream' }),
    async writeManifest(manifest) {
      const open = sinks.filter((s) => !s.completed);
      if (open.length > 0) {
        // The manifest vouches for every stream: written before one of them is whole, it would lie.
        throw new EbrError('internal', `the manifest of ${location} was to be written while ${open.map((s) => s.key.slice(base.length)).join(', ')} had not been completed`, { context: { path: location } });
      }
      await putObject(conn, `${base}manifest.json`, Buffer.from(manifestText(manifest)), { lock, contentType: 'application/json' });
    },
    async abort() {
      for (const s of sinks) s.destroy();
      // Parts in flight finish and each upload aborts itself; then whatever reached the bucket goes.
      await Promise.all(sinks.map((s) => s.settled()));
      await removeAll();
    },
  };
}

function s3Reader(conn: S3Connection, base: string, location: string): ArchiveReader {
  const s = conn.settings;
  const manifestKey = `${base}manifest.json`;
  async function readManifestFile(): Promise<ReadManifestFile> {
    const bytes = await getObjectBytes(conn, manifestKey);
    if (!bytes) {
      throw new EbrError('archive', `no manifest at ${urlOf(s, manifestKey)}: the archive is missing or incomplete`, {
        hint: 'a backup without manifest.json never completed; use another backup (`ebr list`)',
        context: { path: urlOf(s, manifestKey) },
      });
    }
    try {
      return { manifest: parseManifest(bytes.toString('utf8'), urlOf(s, manifestKey)), sha256: sha256Of(bytes) };
    } catch (err) {
      throw new EbrError('archive', `${urlOf(s, manifestKey)} is damaged: ${(err as Error).message}`, { context: { path: urlOf(s, manifestKey) }, cause: err });
    }
  }
  return {
    location,
    readManifestFile,
    readManifest: async () => (await readManifestFile()).manifest,
    async readMeta(name) {
      const key = `${base}meta/${safeName(name)}`;
      const bytes = await getObjectBytes(conn, key);
      if (!bytes) throw new EbrError('archive', `${urlOf(s, key)} is missing`, { hint: 'the archive was changed after the backup; use another backup (`ebr list`)', context: { path: urlOf(s, key) } });
      return bytes;
    },
    readSpace(space, signal, options) {
      const key = `${base}spaces/${safeName(space)}.tar`;
      const url = urlOf(s, key);
      const missing = () => new EbrError('archive', `${url} is missing`, { hint: 'the archive was changed after the backup; use another backup (`ebr list`)', context: { path: url } });
      return codedSpaceMembers(objectChunks(conn, key, signal, missing), url, signal, options?.codec, options?.stored);
    },
  };
}

/**
 * The archives under `<prefix><instance>/`: every prefix there that holds manifest.json, meta/ or
 * spaces/. The log stores beside them (wal/, binlog/) hold none of these and are left out.
 */
async function listArchives(conn: S3Connection, instance: string): Promise<ListedArchive[]> {
  const s = conn.settings;
  const root = instanceKey(s, instance);
  const out: ListedArchive[] = [];
  for (const p of (await listKeys(conn, root, { delimiter: '/' })).prefixes.sort()) {
    // The first page is enough: a backup's prefix holds three entries at this level.
    const inside = await listKeys(conn, p, { delimiter: '/', maxPages: 1 });
    const names = new Set([...inside.keys.map((k) => k.key.slice(p.length)), ...inside.prefixes.map((x) => x.slice(p.length))]);
    if (!names.has('manifest.json') && !names.has('meta/') && !names.has('spaces/')) continue;
    const manifestKey = `${p}manifest.json`;
    out.push({
      backupId: p.slice(root.length, -1),
      location: urlOf(s, p).replace(/\/$/, ''),
      manifestBytes: () => getObjectBytes(conn, manifestKey),
    });
  }
  return out;
}
