/**
 * Starts `putFile` of a file in 5 MiB parts and holds back every part after the third, printing
 * `ready` once three parts are stored, so that the test can kill -9 the process mid-upload.
 * Usage: interrupted-upload.ts <port> <bucket> <key> <file>
 */
import { S3Store, createS3Client } from '../../../activities/storage/s3-store.js';
import { localS3Connection } from '../../../infra/s3-server.js';

const [port, bucket, key, file] = process.argv.slice(2) as [string, string, string, string];
const partsStored = 3;

const client = createS3Client(localS3Connection(Number(port)));
let stored = 0;
client.middlewareStack.add(
  (next, context) => async (args) => {
    if (context.commandName !== 'UploadPartCommand') return next(args);
    if ((args.input as { PartNumber: number }).PartNumber > partsStored) return new Promise<never>(() => {});
    const out = await next(args);
    if (++stored === partsStored) console.log('ready');
    return out;
  },
  { step: 'initialize' },
);
// The held-back parts are promises that never settle; this keeps the process alive until it is killed.
setInterval(() => {}, 60_000);
await new S3Store(client, bucket, '', { upload: { minPartSize: 5 * 1024 * 1024, queueSize: 4 } }).putFile(key, file);
