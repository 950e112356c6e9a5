'use strict';
/**
 * s3rver for the tests, as its own process: node s3rver-main.cjs <s3rver module> <data dir> <bucket>.
 * Prints "listening <port>" once it serves. Run it with --openssl-legacy-provider: s3rver's
 * continuation tokens use DES, which OpenSSL 3 refuses otherwise (every truncated listing would fail).
 *
 * What s3rver 3.7 lacks or gets wrong, mended here so ebr's own code paths can run against it:
 * - ListMultipartUploads (501) and AbortMultipartUpload (405) are added over s3rver's own record of
 *   open uploads (<data dir>/<bucket>/._S3rver_uploads/<uploadId>/{key,<part>…}); path-style requests
 *   only, signatures not checked for these two.
 * - A listing with a delimiter skips every "directory" that holds no object of its own, so a prefix
 *   with only deeper keys (a backup with meta/ and spaces/ but no manifest.json yet) is never reported
 *   as a common prefix; such listings are computed here from the flat listing instead.
 */
const fs = require('node:fs');
const path = require('node:path');

const [, , s3rverModule, directory, bucket] = process.argv;
const S3rver = require(s3rverModule);

const app = new S3rver({ directory, address: '127.0.0.1', port: 0, silent: true, configureBuckets: [{ name: bucket, configs: [] }] });

const flatList = app.store.listObjects.bind(app.store);
app.store.listObjects = async (bucket, options) => {
  if (!options.delimiter) return flatList(bucket, options);
  const all = await flatList(bucket, { ...options, delimiter: '', maxKeys: Infinity });
  const prefix = options.prefix || '';
  const commonPrefixes = new Set();
  const objects = [];
  let isTruncated = false;
  for (const o of all.objects) {
    const i = o.key.slice(prefix.length).indexOf(options.delimiter);
    if (i !== -1) commonPrefixes.add(o.key.slice(0, prefix.length + i + options.delimiter.length));
    else if (objects.length < (options.maxKeys ?? Infinity)) objects.push(o);
    else isTruncated = true;
  }
  return { objects, commonPrefixes: [...commonPrefixes].sort(), isTruncated };
};

const xml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const uploadsOf = (b) => app.store.getResourcePath(b, undefined, 'uploads');

function openUploads(b) {
  const dir = uploadsOf(b);
  let ids;
  try {
    ids = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return ids.flatMap((id) => {
    try {
      return [{ id, key: fs.readFileSync(path.join(dir, id, 'key'), 'utf8'), initiated: fs.statSync(path.join(dir, id)).mtime }];
    } catch {
      return [];
    }
  });
}

function s3Error(ctx, status, code, message) {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xml(message)}</Message></Error>`;
}

// Before s3rver's own routes (index 0 is its logger).
app.middleware.splice(1, 0, async (ctx, next) => {
  const m = /^\/([^/]+)(?:\/(.*))?$/.exec(ctx.path);
  if (!m) return next();
  const b = decodeURIComponent(m[1]);
  const key = !m[2] ? undefined : m[2].split('/').map(decodeURIComponent).join('/');
  if (ctx.method === 'GET' && key === undefined && 'uploads' in ctx.query) {
    if (!fs.existsSync(path.join(directory, b))) return s3Error(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    const prefix = ctx.query.prefix || '';
    const ups = openUploads(b)
      .filter((u) => u.key.startsWith(prefix))
      .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    ctx.type = 'application/xml';
    ctx.body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
      `<Bucket>${xml(b)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xml(prefix)}</Prefix>` +
      `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
      ups.map((u) => `<Upload><Key>${xml(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`).join('') +
      `</ListMultipartUploadsResult>`;
    return;
  }
  if (ctx.method === 'DELETE' && key !== undefined && 'uploadId' in ctx.query) {
    const id = String(ctx.query.uploadId);
    const dir = path.join(uploadsOf(b), path.basename(id));
    if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(dir)) return s3Error(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  return next();
});

app.run().then(
  ({ port }) => console.log(`listening ${port}`),
  (err) => {
    console.error(`s3rver did not start: ${err.message}`);
    process.exit(1);
  },
);
