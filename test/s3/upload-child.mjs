/**
 * A multipart upload to kill: node upload-child.mjs <endpoint> <bucket> <key>. Starts a lib-storage
 * Upload (5 MiB parts), prints "part" once the first part is stored, then keeps feeding it slowly so
 * the test's SIGKILL lands mid-stream, with parts stored and the upload never completed.
 */
import { PassThrough } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const [endpoint, bucket, key] = process.argv.slice(2);
const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true });
const body = new PassThrough();
const upload = new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: 5 << 20, queueSize: 2 });
let told = false;
upload.on('httpUploadProgress', () => {
  if (!told) console.log('part');
  told = true;
});
upload.done().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
for (let i = 0; ; i++) {
  if (!body.write(Buffer.alloc(1 << 20, i))) await new Promise((r) => body.once('drain', r));
  if (told) await new Promise((r) => setTimeout(r, 50));
}
