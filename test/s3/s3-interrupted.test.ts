/**
 * What an upload killed mid-stream leaves, and that remove() leaves nothing: a multipart upload in a
 * child process SIGKILLed after its first part is an open upload with stored parts and no object;
 * list() shows no archive that could look whole, and remove() of that backup aborts the upload (the
 * repair after a crashed backup calls remove() for the journaled archive).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Settings, s3Target } from '../../src/archive/s3/index.js';
import { recordRequests, s3Credentials, startS3Server, type S3Server } from './s3-server.js';

let server: S3Server;
beforeAll(async () => {
  Object.assign(process.env, s3Credentials);
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

describe('an upload killed with SIGKILL', { timeout: 120_000 }, () => {
  it('leaves an open multipart upload and no object; remove() aborts it', async () => {
    const ref = { instance: 'shop', backupId: '20250101T000000Z-cc01' };
    const key = `ebr/shop/${ref.backupId}/spaces/main.tar`;
    const child = spawn(process.execPath, [fileURLToPath(new URL('./upload-child.mjs', import.meta.url)), server.endpoint, server.bucket, key], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => b.toString().includes('part') && resolve());
      child.on('exit', (code) => reject(new Error(`the uploading child exited (${code}) before a part was stored: ${stderr}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    expect(server.openUploads()).toEqual([key]);
    // Parts are invisible until completed: nothing under the prefix, nothing that looks like a backup.
    expect(await server.keys(`ebr/shop/${ref.backupId}/`)).toEqual([]);
    const { requests, options } = recordRequests();
    const target = s3Target(s3Settings.parse(server.settings({ prefix: 'ebr/' })), options);
    expect(await target.list!('shop')).toEqual([]);

    await target.remove(ref);
    expect(requests.filter((r) => r.command === 'AbortMultipartUploadCommand').map((r) => r.input.Key)).toEqual([key]);
    expect(server.openUploads()).toEqual([]);
    // Nothing left: a second remove finds nothing to do.
    await target.remove(ref);
    expect(requests.filter((r) => r.command === 'AbortMultipartUploadCommand').length).toBe(1);
  });
});
