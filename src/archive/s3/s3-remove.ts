/**
 * Removing one backup's prefix: the multipart uploads still open under it (what an upload killed
 * mid-stream leaves: invisible parts that cost storage), then every object version, then the delete
 * markers. Object Lock may refuse some versions; what it allows goes, and the error names the rest and
 * until when they are kept.
 */
import { EbrError } from '../../errors.js';
import type { S3Connection } from './s3-client.js';
import { errorCode, isUnsupported } from './s3-client.js';
import { listKeys } from './s3-objects.js';
import { urlOf } from './s3-settings.js';

interface Doomed {
  key: string;
  versionId?: string;
}

export interface KeptObject extends Doomed {
  mode?: string;
  retainUntil?: Date;
  reason: string;
}

/** Aborts every multipart upload open under `prefix`; returns how many. A server that cannot list them (501) has none to find: 0. */
export async function abortUploadsUnder(conn: S3Connection, prefix: string): Promise<number> {
  const s = conn.settings;
  let aborted = 0;
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    let out;
    try {
      out = await conn.call({ action: 'list the multipart uploads under', key: prefix }, (c, s3) =>
        c.send(new s3.ListMultipartUploadsCommand({ Bucket: s.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { UploadIdMarker: idMarker } : {}) })),
      );
    } catch (err) {
      // Such a server leaves interrupted uploads to its own expiry; there is nothing ebr can name.
      if (isUnsupported((err as Error).cause)) return aborted;
      throw err;
    }
    for (const u of out.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      try {
        await conn.call({ action: 'abort the multipart upload of', key: u.Key }, (c, s3) => c.send(new s3.AbortMultipartUploadCommand({ Bucket: s.bucket, Key: u.Key, UploadId: u.UploadId })));
        aborted++;
      } catch (err) {
        if (errorCode((err as Error).cause) !== 'NoSuchUpload') throw err;
      }
    }
    if (!out.IsTruncated) return aborted;
    keyMarker = out.NextKeyMarker;
    idMarker = out.NextUploadIdMarker;
    if (!keyMarker && !idMarker) return aborted;
  }
}

/**
 * Every version and delete marker under `prefix`; a server without versioning support (501, 405)
 * gets a plain listing instead.
 */
async function everythingUnder(conn: S3Connection, prefix: string): Promise<Doomed[]> {
  const s = conn.settings;
  const out: Doomed[] = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await conn.call({ action: 'list the object versions under', key: prefix }, (c, s3) =>
        c.send(new s3.ListObjectVersionsCommand({ Bucket: s.bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(idMarker ? { VersionIdMarker: idMarker } : {}) })),
      );
    } catch (err) {
      if (out.length === 0 && isUnsupported((err as Error).cause)) return (await listKeys(conn, prefix)).keys.map((k) => ({ key: k.key }));
      throw err;
    }
    for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
      if (v.Key) out.push({ key: v.Key, ...(v.VersionId ? { versionId: v.VersionId } : {}) });
    }
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    idMarker = page.NextVersionIdMarker;
    if (!keyMarker && !idMarker) return out;
  }
}

/** Deletes what it can under `prefix`; returns what was refused (Object Lock, legal hold, permissions). */
async function deleteUnder(conn: S3Connection, prefix: string): Promise<KeptObject[]> {
  const s = conn.settings;
  const doomed = await everythingUnder(conn, prefix);
  const refused: KeptObject[] = [];
  for (let i = 0; i < doomed.length; i += 1000) {
    const batch = doomed.slice(i, i + 1000);
    const out = await conn.call({ action: 'delete objects under', key: prefix }, (c, s3) =>
      c.send(new s3.DeleteObjectsCommand({ Bucket: s.bucket, Delete: { Quiet: true, Objects: batch.map((d) => ({ Key: d.key, ...(d.versionId ? { VersionId: d.versionId } : {}) })) } })),
    );
    for (const e of out.Errors ?? []) {
      if (!e.Key || e.Code === 'NoSuchKey' || e.Code === 'NoSuchVersion') continue;
      refused.push({ key: e.Key, ...(e.VersionId ? { versionId: e.VersionId } : {}), reason: `${e.Code ?? 'refused'}${e.Message ? `: ${e.Message}` : ''}` });
    }
  }
  for (const k of refused) Object.assign(k, await retentionOf(conn, k));
  return refused;
}

/** The Object Lock retention of one version, when the server tells. */
async function retentionOf(conn: S3Connection, d: Doomed): Promise<{ mode?: string; retainUntil?: Date }> {
  const s = conn.settings;
  try {
    const h = await conn.call({ action: 'read the retention of', key: d.key }, (c, s3) => c.send(new s3.HeadObjectCommand({ Bucket: s.bucket, Key: d.key, ...(d.versionId ? { VersionId: d.versionId } : {}) })));
    return { ...(h.ObjectLockMode ? { mode: h.ObjectLockMode } : {}), ...(h.ObjectLockRetainUntilDate ? { retainUntil: new Date(h.ObjectLockRetainUntilDate) } : {}) };
  } catch {
    return {};
  }
}

/**
 * Removes everything under `prefix`: open multipart uploads, then every object (every version). When
 * some objects are refused, the rest is still removed and an EbrError names the kept ones and, under
 * Object Lock, the day each may go. A prefix with nothing under it is no error.
 */
export async function removeUnder(conn: S3Connection, prefix: string, context: Record<string, unknown> = {}): Promise<void> {
  const s = conn.settings;
  await abortUploadsUnder(conn, prefix);
  const kept = await deleteUnder(conn, prefix);
  // An upload that was completing while the first pass ran is an object now: one more pass for uploads.
  await abortUploadsUnder(conn, prefix);
  if (kept.length === 0) return;
  const locked = kept.filter((k) => k.retainUntil);
  const until = locked.map((k) => k.retainUntil!.getTime()).sort((a, b) => b - a)[0];
  const list = kept
    .slice(0, 5)
    .map((k) => `${k.key.slice(prefix.length)}${k.retainUntil ? ` (${k.mode ?? 'locked'} until ${k.retainUntil.toISOString()})` : ` (${k.reason})`}`)
    .join(', ');
  throw new EbrError('archive', `${urlOf(s, prefix)} was removed except ${kept.length} object${kept.length === 1 ? '' : 's'} the bucket refused to delete: ${list}${kept.length > 5 ? ', …' : ''}`, {
    hint:
      until !== undefined
        ? `Object Lock keeps them until ${new Date(until).toISOString()} (that is its purpose; GOVERNANCE needs a user allowed to bypass it, COMPLIANCE nobody); remove them after that date, or let a lifecycle rule expire them`
        : `check the permissions (s3:DeleteObject, s3:DeleteObjectVersion) and legal holds on bucket ${s.bucket}, then remove the backup again`,
    context: { ...context, path: urlOf(s, prefix), kept: kept.map((k) => ({ key: k.key, ...(k.versionId ? { versionId: k.versionId } : {}), ...(k.retainUntil ? { retainUntil: k.retainUntil.toISOString() } : {}) })) },
  });
}
