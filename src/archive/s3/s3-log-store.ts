/**
 * The log archive in the bucket, beside the backups: `<prefix><instance>/<kind>/<name>`, one object per
 * log (a WAL segment, a binlog) written with a single PutObject. A PutObject is atomic — the object is
 * there whole or not at all — so the sha256, stored as the object's metadata (x-amz-meta-sha256), needs
 * no commit mark of its own; the server also gets it as ChecksumSHA256 and checks the bytes it received.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { EbrError } from '../../errors.js';
import type { LogStore } from '../../logs/log-store.js';
import { copyWithDigest, digestFile } from '../digest-copy.js';
import { FileSink } from '../file-sink.js';
import { sha256Of } from '../manifest.js';
import { errorCode, httpStatus, isMissingKey, s3Connection, type S3Options } from './s3-client.js';
import { listKeys, putObject } from './s3-objects.js';
import { instanceKey, s3Settings, urlOf, type S3Settings, type S3SettingsInput } from './s3-settings.js';

/** Logs up to this size are read once into memory (a 16 MiB WAL segment); bigger ones (binlogs) are streamed from the file. */
const inMemoryBytes = 64 << 20;
/** HEAD requests list() has in flight at once (listing gives no metadata, so each log's digest costs one). */
const headsAtOnce = 16;

export function s3LogStore(settings: S3Settings | S3SettingsInput, instance: string, kind: string, options: S3Options = {}): LogStore {
  const s = s3Settings.parse(settings);
  const conn = s3Connection(s, options);
  const base = `${instanceKey(s, instance)}${checkName(kind)}/`;
  const keyOf = (name: string) => `${base}${checkName(name)}`;
  const ctx = (name: string, extra: Record<string, unknown> = {}) => ({ instance, path: urlOf(s, `${base}${name}`), ...extra });

  /** Size and recorded digest of a stored log; undefined when absent. An object without a digest was not written by ebr. */
  async function head(name: string): Promise<{ size: number; sha256: string | undefined } | undefined> {
    const key = keyOf(name);
    return logCall(name, () =>
      conn.call({ action: 'read', key }, async (c, s3) => {
        try {
          const h = await c.send(new s3.HeadObjectCommand({ Bucket: s.bucket, Key: key }));
          const sha256 = h.Metadata?.sha256;
          return { size: h.ContentLength ?? 0, sha256: sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : undefined };
        } catch (err) {
          if (isMissingKey(err)) return undefined;
          throw err;
        }
      }),
    );
  }

  function refuse(name: string, have: string | undefined, got: string, source: string): EbrError {
    const there = have ? `a different ${name} (sha256 ${have.slice(0, 12)}…, the new one is ${got.slice(0, 12)}…)` : `an object ${name} that ebr did not write (it has no recorded sha256)`;
    return new EbrError('logArchive', `the archive already holds ${there}; refusing to overwrite it`, {
      hint: 'two servers (or a restored copy still archiving) are writing to the same log archive; give each its own instance name or target.prefix, and keep the existing object',
      context: ctx(name, { source }),
    });
  }

  /** Errors of the store are the log archive's: the same message and hint, another code. */
  async function logCall<T>(name: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof EbrError && err.code === 'archive') throw new EbrError('logArchive', err.message, { ...(err.hint ? { hint: err.hint } : {}), context: { ...ctx(name), ...err.context }, cause: err.cause });
      throw err;
    }
  }

  return {
    async put(name, sourceFile, signal) {
      const key = keyOf(name);
      const before = await head(name);
      if (before) {
        // The common retry: PostgreSQL re-runs archive_command after a crash between archive and its .done mark.
        if (!before.sha256) throw refuse(name, undefined, '?', sourceFile);
        const { sha256 } = await digestFile(sourceFile, signal);
        if (sha256 === before.sha256) return 'identical';
        throw refuse(name, before.sha256, sha256, sourceFile);
      }
      const size = (await stat(sourceFile)).size;
      let body: Buffer | Readable;
      let sha256: string;
      let streamed: { sha256: () => string } | undefined;
      if (size <= inMemoryBytes) {
        body = await readFile(sourceFile, signal ? { signal } : {});
        if (body.length !== size) throw changed(name, sourceFile, `${size} → ${body.length} bytes`);
        sha256 = sha256Of(body);
      } else {
        sha256 = (await digestFile(sourceFile, signal)).sha256;
        const hashing = hashingStream();
        streamed = hashing;
        body = createReadStream(sourceFile, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) }).pipe(hashing.stream);
      }
      try {
        await logCall(name, () =>
          putObject(conn, key, body, { metadata: { sha256 }, checksumSha256: Buffer.from(sha256, 'hex').toString('base64'), contentLength: size, contentType: 'application/octet-stream' }),
        );
      } catch (err) {
        // Someone stored the name between our HEAD and PUT (a server that knows If-None-Match refuses ours).
        const cause = (err as Error).cause;
        if (httpStatus(cause) === 412 || errorCode(cause) === 'PreconditionFailed' || errorCode(cause) === 'ConditionalRequestConflict') {
          const now = await head(name);
          if (now?.sha256 === sha256) return 'identical';
          throw refuse(name, now?.sha256, sha256, sourceFile);
        }
        throw err;
      }
      if (streamed && streamed.sha256() !== sha256) {
        // The file changed between the digest and the upload, and the server did not check the checksum.
        await logCall(name, () => conn.call({ action: 'delete', key }, (c, s3) => c.send(new s3.DeleteObjectCommand({ Bucket: s.bucket, Key: key })))).catch(() => undefined);
        throw changed(name, sourceFile, 'its bytes differ between two reads');
      }
      return 'stored';
    },

    async get(name, destFile, signal) {
      const key = keyOf(name);
      const got = await logCall(name, () =>
        conn.call({ action: 'read', key }, async (c, s3) => {
          try {
            return await c.send(new s3.GetObjectCommand({ Bucket: s.bucket, Key: key }), signal ? { abortSignal: signal } : {});
          } catch (err) {
            if (isMissingKey(err)) return undefined;
            throw err;
          }
        }),
      );
      if (!got) return false;
      const body = got.Body as Readable;
      const want = got.Metadata?.sha256;
      if (!want) {
        body.destroy();
        return false;
      }
      const tmp = `${destFile}.ebr-tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
      const sink = new FileSink(tmp);
      try {
        let d;
        try {
          d = await copyWithDigest(body, (b) => sink.write(b), got.ContentLength, signal ?? new AbortController().signal, name);
        } catch (err) {
          if (err instanceof EbrError) throw err;
          throw new EbrError('logArchive', `cannot fetch ${name} from ${urlOf(s, key)} into ${destFile}: ${(err as Error).message}`, { hint: 'check the connection to the S3 server and that the destination directory is writable', context: ctx(name, { dest: destFile }), cause: err });
        }
        await sink.close();
        if (d.sha256 !== want) {
          throw new EbrError('digestMismatch', `${name} in the log archive does not match its recorded digest (sha256 ${d.sha256.slice(0, 12)}…, recorded ${want.slice(0, 12)}…)`, {
            hint: 'the archived log is damaged; recovery cannot go past it. Restore to a time before it, or from a copy of the archive',
            context: ctx(name),
          });
        }
        await rename(tmp, destFile);
        return true;
      } catch (err) {
        sink.destroy();
        body.destroy();
        await rm(tmp, { force: true });
        if (err instanceof EbrError) throw err;
        throw new EbrError('logArchive', `cannot fetch ${name} into ${destFile}: ${(err as Error).message}`, { hint: 'check that the destination directory is writable by the user running ebr', context: ctx(name, { dest: destFile }), cause: err });
      }
    },

    async has(name) {
      return (await head(name))?.sha256 !== undefined;
    },

    // One DeleteObject: the digest lives in the object's metadata, so the log and its mark go together
    // and no crash can leave one without the other. A missing key is no error on S3.
    async remove(name) {
      const key = keyOf(name);
      await logCall(name, () => conn.call({ action: 'delete', key }, (c, s3) => c.send(new s3.DeleteObjectCommand({ Bucket: s.bucket, Key: key }))));
    },

    async list(prefix = '') {
      const { keys } = await logCall(prefix, () => listKeys(conn, `${base}${prefix}`));
      const names = keys.map((k) => k.key.slice(base.length)).filter((n) => n !== '' && !n.includes('/'));
      const out: Array<{ name: string; size: number; sha256: string }> = [];
      for (let i = 0; i < names.length; i += headsAtOnce) {
        const heads = await Promise.all(names.slice(i, i + headsAtOnce).map(async (name) => ({ name, h: await head(name) })));
        for (const { name, h } of heads) if (h?.sha256) out.push({ name, size: h.size, sha256: h.sha256 });
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
  };
}

function changed(name: string, source: string, how: string): EbrError {
  return new EbrError('logArchive', `${source} changed while it was archived as ${name} (${how})`, { hint: 'the server must hand over finished logs only', context: { member: name, source } });
}

/** A pass-through that hashes what goes through it. */
function hashingStream(): { stream: Transform; sha256: () => string } {
  const hash = createHash('sha256');
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

/** Log names and kinds become key parts: no separators, no dot files. */
function checkName(name: string): string {
  if (!/^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/.test(name) || name.includes('..')) {
    throw new EbrError('logArchive', `"${name}" cannot be a log name in the archive`, {
      hint: 'log names may hold letters, digits and _ . @ + -, and may not start with a dot',
      context: { member: name },
    });
  }
  return name;
}
