/** Whole small objects (manifest, meta files, logs) and object bodies as byte streams, over one connection. */
import type { Readable } from 'node:stream';
import type { S3Connection } from './s3-client.js';
import { isMissingKey } from './s3-client.js';
import { objectLockParams } from './s3-settings.js';

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** sha256 of the body, base64: the server checks the bytes it received against it. */
  checksumSha256?: string;
  contentLength?: number;
  lock?: ReturnType<typeof objectLockParams>;
}

/** One PutObject, never over an existing object where the server knows If-None-Match. */
export async function putObject(conn: S3Connection, key: string, body: Buffer | Readable, o: PutOptions = {}): Promise<void> {
  const s = conn.settings;
  await conn.call({ action: 'write', key }, (c, s3) =>
    c.send(
      new s3.PutObjectCommand({
        Bucket: s.bucket,
        Key: key,
        Body: body,
        IfNoneMatch: '*',
        ...(o.contentType ? { ContentType: o.contentType } : {}),
        ...(o.metadata ? { Metadata: o.metadata } : {}),
        ...(o.checksumSha256 ? { ChecksumSHA256: o.checksumSha256 } : {}),
        ...(o.contentLength !== undefined ? { ContentLength: o.contentLength } : {}),
        ...(o.lock ?? objectLockParams(s)),
      }),
    ),
  );
}

/** The object's bytes, or undefined when there is no such key. */
export async function getObjectBytes(conn: S3Connection, key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
  const s = conn.settings;
  return conn.call({ action: 'read', key }, async (c, s3) => {
    try {
      const out = await c.send(new s3.GetObjectCommand({ Bucket: s.bucket, Key: key }), signal ? { abortSignal: signal } : {});
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (err) {
      if (isMissingKey(err)) return undefined;
      throw err;
    }
  });
}

/** The object's body as it arrives; a missing key throws what `missing` makes. */
export async function* objectChunks(conn: S3Connection, key: string, signal: AbortSignal, missing: () => Error): AsyncGenerator<Buffer> {
  const s = conn.settings;
  const body = await conn.call({ action: 'read', key }, async (c, s3) => {
    try {
      return (await c.send(new s3.GetObjectCommand({ Bucket: s.bucket, Key: key }), { abortSignal: signal })).Body as Readable;
    } catch (err) {
      if (isMissingKey(err)) throw missing();
      throw err;
    }
  });
  try {
    for await (const b of body) yield b as Buffer;
  } catch (err) {
    throw conn.failure(err, { action: 'read', key });
  } finally {
    body.destroy();
  }
}

/** Every key under `prefix` (with Delimiter, the "directories" one level down too), page by page. */
export async function listKeys(conn: S3Connection, prefix: string, o: { delimiter?: string; maxPages?: number } = {}): Promise<{ keys: Array<{ key: string; size: number }>; prefixes: string[] }> {
  const s = conn.settings;
  const keys: Array<{ key: string; size: number }> = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < (o.maxPages ?? Infinity); page++) {
    const out = await conn.call({ action: 'list', key: prefix }, (c, s3) =>
      c.send(new s3.ListObjectsV2Command({ Bucket: s.bucket, Prefix: prefix, ...(o.delimiter ? { Delimiter: o.delimiter } : {}), ...(token ? { ContinuationToken: token } : {}) })),
    );
    for (const x of out.Contents ?? []) if (x.Key !== undefined) keys.push({ key: x.Key, size: x.Size ?? 0 });
    for (const p of out.CommonPrefixes ?? []) if (p.Prefix !== undefined) prefixes.push(p.Prefix);
    if (!out.IsTruncated || !out.NextContinuationToken) break;
    token = out.NextContinuationToken;
  }
  return { keys, prefixes };
}

/** Whether anything at all lies under `prefix`: one cheap request. */
export async function anyUnder(conn: S3Connection, prefix: string): Promise<boolean> {
  const s = conn.settings;
  const out = await conn.call({ action: 'list', key: prefix }, (c, s3) => c.send(new s3.ListObjectsV2Command({ Bucket: s.bucket, Prefix: prefix, MaxKeys: 1 })));
  return (out.KeyCount ?? out.Contents?.length ?? 0) > 0;
}
