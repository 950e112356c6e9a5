/**
 * A throwaway s3rver (the npm dev dependency) in its own process, on a free port, over a temp
 * directory, with one bucket; see s3rver-main.cjs for the two multipart calls it is given. A machine
 * without s3rver fails the test, saying what to install — never a skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { S3Options, S3SettingsInput } from '../../src/archive/s3/index.js';

/** s3rver's fixed account: what every test process gives the SDK's default chain through its environment. */
export const s3Credentials = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } as const;

// The SDK's Node 20 deprecation notice would interleave with every test's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3Server {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's data directory. */
  dir: string;
  /** `target:` settings for this server's bucket. */
  settings(extra?: Partial<S3SettingsInput>): S3SettingsInput;
  /** Every key in the bucket under `prefix`, sorted (listed through the S3 API). */
  keys(prefix?: string): Promise<string[]>;
  /** Keys of the multipart uploads still open, as s3rver keeps them on disk (not through the API). */
  openUploads(): string[];
  /** The file s3rver keeps an object's bytes in (to damage it). */
  objectFile(key: string): string;
  stop(): Promise<void>;
}

function findUp(rel: string): string {
  for (let d = path.dirname(fileURLToPath(import.meta.url)); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, rel))) return path.join(d, rel);
    if (d === path.dirname(d)) throw new Error(`cannot find ${rel} above ${fileURLToPath(import.meta.url)}`);
  }
}

export async function startS3Server(o: { bucket?: string } = {}): Promise<S3Server> {
  let s3rver: string;
  try {
    s3rver = createRequire(import.meta.url).resolve('s3rver');
  } catch {
    throw new Error('s3rver is not installed: it is a devDependency of ebr (npm ci installs it); the s3 tests need it to run a real S3 protocol server');
  }
  const bucket = o.bucket ?? 'ebr-test';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ebr-s3rver-'));
  const child = spawn(process.execPath, ['--openssl-legacy-provider', findUp('test/s3/s3rver-main.cjs'), s3rver, dir, bucket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 30 s: ${stderr || out}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with ${code} before it listened: ${stderr || out}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: s3Credentials.AWS_ACCESS_KEY_ID, secretAccessKey: s3Credentials.AWS_SECRET_ACCESS_KEY } });
  return {
    endpoint,
    port,
    bucket,
    dir,
    settings: (extra = {}) => ({ type: 's3', bucket, endpoint, forcePathStyle: true, ...extra }),
    async keys(prefix = '') {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
        keys.push(...(out.Contents ?? []).map((c) => c.Key!));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    openUploads() {
      const uploads = path.join(dir, bucket, '._S3rver_uploads');
      if (!existsSync(uploads)) return [];
      return readdirSync(uploads)
        .filter((id) => existsSync(path.join(uploads, id, 'key')))
        .map((id) => readFileSync(path.join(uploads, id, 'key'), 'utf8'))
        .sort();
    },
    objectFile(key) {
      const parts = key.split('/');
      const last = parts.pop()!;
      return path.join(dir, bucket, ...parts, `${last}._S3rver_object`);
    },
    async stop() {
      client.destroy();
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

export interface RecordedRequest {
  command: string;
  input: Record<string, unknown>;
  /** The HTTP headers as signed and sent. */
  headers?: Record<string, string>;
}

/** Options for a target or log store that record every request its clients send: command, input, and the HTTP headers that went out. */
export function recordRequests(): { options: S3Options; requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  const byContext = new WeakMap<object, RecordedRequest>();
  return {
    requests,
    options: {
      onClient(client) {
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const r: RecordedRequest = { command: String(context.commandName), input: { ...(args.input as Record<string, unknown>) } };
            requests.push(r);
            byContext.set(context, r);
            return next(args);
          },
          { step: 'initialize', name: 'ebrTestRecorder' },
        );
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const r = byContext.get(context);
            const headers = (args.request as { headers?: Record<string, string> }).headers;
            if (r && headers) r.headers = { ...headers };
            return next(args);
          },
          { step: 'finalizeRequest', name: 'ebrTestHeaderRecorder', priority: 'low' },
        );
      },
    },
  };
}
