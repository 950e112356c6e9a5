/**
 * A space stream on its way into one object: the bytes go through a PassThrough into a multipart
 * Upload (lib-storage), whose parts go up in parallel. Memory stays bounded: the Upload holds at most
 * `queueSize` parts in flight and one being filled, and write() waits while the PassThrough is full,
 * so a space is never buffered whole. Parts stay invisible until CompleteMultipartUpload, so an
 * interrupted stream leaves no object that looks whole.
 */
import { PassThrough } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Upload } from '@aws-sdk/lib-storage';
import type { ByteSink } from '../byte-sink.js';
import type { LibStorage, S3Connection } from './s3-client.js';
import { objectLockParams } from './s3-settings.js';

export class UploadSink implements ByteSink {
  private readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly upload: Upload;
  /** Settles (never rejects) once the upload is complete or has given up, its multipart upload aborted. */
  private readonly outcome: Promise<void>;
  private failure: Error | undefined;
  private destroyed = false;
  private sent = 0;
  /** Whether close() succeeded: the object exists, whole. */
  completed = false;
  position = 0;

  /** Bytes the upload has sent (whole parts as they are acknowledged). */
  get written(): number {
    return this.sent;
  }

  constructor(
    private readonly conn: S3Connection,
    readonly key: string,
    storage: LibStorage,
    client: S3Client,
    lock: ReturnType<typeof objectLockParams>,
  ) {
    const s = conn.settings;
    // Destroying the body is how a stream is abandoned; the error is told by whoever reads it, never as an uncaught event.
    this.body.on('error', () => undefined);
    this.upload = new storage.Upload({
      client,
      // IfNoneMatch reaches PutObject and CompleteMultipartUpload: a server that knows it refuses to replace an object.
      params: { Bucket: s.bucket, Key: key, Body: this.body, ContentType: 'application/x-tar', IfNoneMatch: '*', ...lock },
      partSize: s.partSize,
      queueSize: s.queueSize,
      leavePartsOnError: false,
    });
    this.upload.on('httpUploadProgress', (p) => {
      if (typeof p.loaded === 'number') this.sent = p.loaded;
    });
    this.outcome = this.upload.done().then(
      () => {
        this.completed = true;
      },
      (err: unknown) => {
        this.failure ??= this.conn.failure(err, { action: 'upload', key });
        // Nobody reads the body any more: a write waiting for room must hear of it.
        this.body.destroy();
      },
    );
  }

  async write(buf: Buffer): Promise<void> {
    this.throwIfBroken();
    this.position += buf.length;
    if (!this.body.write(buf)) await this.drained();
  }

  /** Resolves once CompleteMultipartUpload (or the one PutObject of a small stream) succeeded. */
  async close(): Promise<void> {
    this.throwIfBroken();
    this.body.end();
    await this.outcome;
    if (this.failure) throw this.failure;
  }

  /**
   * Gives up: the body ends with an error, the Upload's part uploaders stop after the parts in flight
   * and abort the multipart upload. `settled()` says when that is done.
   */
  destroy(): void {
    if (this.destroyed || this.completed) return;
    this.destroyed = true;
    this.body.destroy(new Error(`the upload of ${this.key} was abandoned`));
  }

  /** Resolves once the upload has stopped (complete, failed or aborted); never rejects. */
  settled(): Promise<void> {
    return this.outcome;
  }

  private throwIfBroken(): void {
    if (this.failure) throw this.failure;
    if (this.destroyed || this.body.destroyed) throw this.conn.failure(Object.assign(new Error('the upload was abandoned'), { code: 'ERR_STREAM_DESTROYED' }), { action: 'upload', key: this.key });
  }

  /** Waits for room in the body, or for its end (a failed or abandoned upload never drains). */
  private drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.body.off('drain', done);
        this.body.off('close', done);
        try {
          this.throwIfBroken();
          resolve();
        } catch (err) {
          reject(err);
        }
      };
      this.body.on('drain', done);
      this.body.on('close', done);
    });
  }
}
