/**
 * One S3 client per target, made on first use: the AWS SDK is loaded only when an s3 target talks to
 * its bucket, so instances on other targets never pay for it. Every call goes through `call`, which
 * turns what the SDK throws into an EbrError naming the bucket and key, with a hint.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { EbrError, isAbort } from '../../errors.js';
import { urlOf, type S3Settings } from './s3-settings.js';

export type ClientS3 = typeof import('@aws-sdk/client-s3');
export type LibStorage = typeof import('@aws-sdk/lib-storage');

export interface S3Sdk {
  s3: ClientS3;
  storage: LibStorage;
}

let loaded: Promise<S3Sdk> | undefined;

export function loadSdk(): Promise<S3Sdk> {
  // The SDK warns on every process start under Node 20 that its releases after 2027 need Node 22; for a
  // CLI run from cron that is noise on every line of its log. Whoever wants the warning sets the variable to false.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return (loaded ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([s3, storage]) => ({ s3, storage })));
}

/** Optional hooks, for the tests: each client made is handed over before its first request (to record requests). */
export interface S3Options {
  onClient?: (client: S3Client) => void;
}

/** What a call was doing, for its error message. */
export interface S3Call {
  /** A verb phrase: 'upload', 'read', 'list', 'delete'… */
  action: string;
  key?: string;
}

export interface S3Connection {
  readonly settings: S3Settings;
  sdk(): Promise<S3Sdk>;
  client(): Promise<S3Client>;
  /** Runs one request; whatever it throws comes back as an EbrError('archive') (an abort stays an abort). */
  call<T>(what: S3Call, run: (client: S3Client, s3: ClientS3) => Promise<T>): Promise<T>;
  /** The error for a failure of `what`, for callers that catch SDK errors themselves (streams). */
  failure(err: unknown, what: S3Call): Error;
}

export function s3Connection(settings: S3Settings, options: S3Options = {}): S3Connection {
  let made: Promise<S3Client> | undefined;
  const client = () =>
    (made ??= loadSdk().then(({ s3 }) => {
      // Credentials are left to the SDK's default chain: environment, shared files, SSO, instance roles.
      const c = new s3.S3Client({
        region: settings.region,
        ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
        ...(settings.forcePathStyle !== undefined ? { forcePathStyle: settings.forcePathStyle } : {}),
        // A server that stops answering must not hang a backup forever; a slow one moving bytes is fine.
        requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
      });
      options.onClient?.(c);
      return c;
    }));
  const failure = (err: unknown, what: S3Call) => s3Failure(err, settings, what);
  return {
    settings,
    sdk: loadSdk,
    client,
    failure,
    async call(what, run) {
      try {
        const [c, { s3 }] = await Promise.all([client(), loadSdk()]);
        return await run(c, s3);
      } catch (err) {
        throw failure(err, what);
      }
    },
  };
}

/** The S3 error code of a failure (NoSuchKey, AccessDenied…), or a Node error code (ECONNREFUSED…). */
export function errorCode(err: unknown): string | undefined {
  const e = err as { Code?: string; name?: string; code?: string } | undefined;
  return e?.Code ?? e?.code ?? (e?.name && e.name !== 'Error' ? e.name : undefined);
}

export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function isMissingKey(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'NoSuchKey' || code === 'NotFound' || (httpStatus(err) === 404 && code !== 'NoSuchBucket');
}

/** The server does not do this call at all (some S3-compatible servers lack multipart listing or versions). */
export function isUnsupported(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'NotImplemented' || code === 'MethodNotAllowed' || httpStatus(err) === 501;
}

const credentialHint =
  'ebr takes S3 credentials only from the AWS SDK default chain: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) in the environment ebr runs in, or AWS_PROFILE with ~/.aws/credentials, or give the host an instance role; never in ebr.yaml';

const unreachable = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'TimeoutError', 'EPIPE']);

/** An SDK failure as ebr reports it: what was done to which object, why, and what to do about it. */
export function s3Failure(err: unknown, s: S3Settings, what: S3Call): Error {
  if (err instanceof EbrError || isAbort(err)) return err as Error;
  const code = errorCode(err);
  const where = what.key !== undefined ? urlOf(s, what.key) : `s3://${s.bucket}`;
  const server = s.endpoint ?? `AWS S3 (region ${s.region})`;
  const detail = shortMessage(err);
  const context = { path: where, bucket: s.bucket, ...(what.key !== undefined ? { key: what.key } : {}), ...(s.endpoint ? { endpoint: s.endpoint } : {}), ...(code ? { s3Code: code } : {}) };
  const make = (message: string, hint: string) => new EbrError('archive', message, { hint, context, cause: err });

  if (code === 'CredentialsProviderError' || /could not load credentials/i.test(detail)) {
    return make(`cannot ${what.action} ${where}: no S3 credentials were found`, credentialHint);
  }
  if (code === 'NoSuchBucket') {
    return make(`cannot ${what.action} ${where}: the bucket ${s.bucket} does not exist at ${server}`, `create the bucket ${s.bucket}, or fix target.bucket (and target.endpoint or target.region if it lives elsewhere)`);
  }
  if (code === 'InvalidAccessKeyId' || code === 'SignatureDoesNotMatch' || code === 'InvalidToken' || code === 'ExpiredToken') {
    return make(`cannot ${what.action} ${where}: ${server} refused the credentials (${code})`, `check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile or role in use) against ${server}; ${credentialHint}`);
  }
  if (code === 'AccessDenied' || code === 'Forbidden' || httpStatus(err) === 403) {
    return make(`cannot ${what.action} ${where}: access denied`, `the credentials in use lack a permission on bucket ${s.bucket}: ebr needs s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucketMultipartUploads and s3:AbortMultipartUpload (and s3:PutObjectRetention with objectLock)`);
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || code === 'IllegalLocationConstraintException') {
    return make(`cannot ${what.action} ${where}: the bucket is in another region than ${s.region}`, `set target.region to the bucket's region`);
  }
  if (code !== undefined && unreachable.has(code)) {
    const vhost = code === 'ENOTFOUND' && !s.forcePathStyle && s.endpoint ? `; a server that does not serve buckets as host names (${s.bucket}.host) needs forcePathStyle: true` : '';
    return make(`cannot ${what.action} ${where}: the S3 endpoint ${server} cannot be reached (${code}${detail && detail !== code ? `: ${detail}` : ''})`, `check target.endpoint (scheme, host and port of the S3 server) and that the server runs and is reachable from this host${vhost}`);
  }
  return make(`cannot ${what.action} ${where}: ${code ? `${code}: ` : ''}${detail || 'the request failed'}`, `check that ${server} is an S3 server and that bucket ${s.bucket} is usable with these credentials`);
}

/** One line of what went wrong, never a stack: an AggregateError (connection refused on ::1 and 127.0.0.1) has no message of its own. */
function shortMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err ?? '');
  const first = err.message || (err instanceof AggregateError ? (err.errors[0] as Error | undefined)?.message ?? '' : '');
  return first.split('\n')[0]!.trim();
}
