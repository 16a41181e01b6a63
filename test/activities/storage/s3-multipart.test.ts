import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3Store, createS3Client } from '../../../activities/storage/s3-store.js';
import { defaultUploadOptions, partSizeFor } from '../../../activities/storage/s3-upload.js';
import type { PrivateS3 } from '../../support/s3.js';
import { privateS3, testBucket } from '../../support/s3.js';
import { tempDir } from '../../support/config.js';
import { killHard, startScript } from '../../support/processes.js';
import { sha256File, writeStampedFile } from './files.js';

const MiB = 1024 * 1024;
const interruptedUpload = fileURLToPath(new URL('./interrupted-upload.ts', import.meta.url));
/** S3's smallest part, so that a file of a few hundred MB is dozens of parts. */
const smallParts = { minPartSize: 5 * MiB, queueSize: 4 };

let s3: PrivateS3;
let dir: string;
before(async () => {
  s3 = await privateS3();
  dir = await tempDir('code-a1-multipart-');
});
after(async () => {
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
});

/**
 * A client of the private server whose commands are recorded by name (with the most parts ever in
 * flight at once), and optionally faulted.
 */
function recordingClient(fault?: (command: string, input: { PartNumber?: number }) => void) {
  const client = createS3Client(s3.connection);
  const record = { client, sent: [] as string[], maxPartsInFlight: 0 };
  let inFlight = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      record.sent.push(command);
      fault?.(command, args.input as { PartNumber?: number });
      if (command !== 'UploadPartCommand') return next(args);
      record.maxPartsInFlight = Math.max(record.maxPartsInFlight, ++inFlight);
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    },
    { step: 'initialize' },
  );
  return record;
}

async function incompleteUploads(client: S3Client, key: string): Promise<string[]> {
  const { Uploads = [] } = await client.send(new ListMultipartUploadsCommand({ Bucket: testBucket, Prefix: key }));
  return Uploads.filter((u) => u.Key === key).map((u) => u.UploadId!);
}

async function assertRoundTrip(store: S3Store, key: string, source: string, digest: string): Promise<void> {
  const copy = join(dir, `copy-${randomUUID()}`);
  try {
    assert.equal(await store.getFile(key, copy), true);
    assert.equal((await stat(copy)).size, (await stat(source)).size);
    assert.equal(await sha256File(copy), digest);
  } finally {
    await rm(copy, { force: true });
  }
}

describe('uploads of large files to S3', () => {
  it('choose parts of whole MiB, no smaller than asked, that keep any file within 10,000 parts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 * 1024 ** 4 }), fc.constantFrom(5 * MiB, 8 * MiB), (size, minPartSize) => {
        const part = partSizeFor(size, minPartSize);
        assert.ok(part >= minPartSize);
        assert.equal(part % MiB, 0);
        assert.ok(Math.ceil(size / part) <= 10_000);
      }),
    );
    assert.equal(partSizeFor(100 * 1024 ** 3, 8 * MiB), 11 * MiB, 'a 100 GiB file gets 11 MiB parts');
  });

  it('send a file that fits in one part as a single PutObject', async () => {
    const source = join(dir, 'small.bin');
    const digest = await writeStampedFile(source, 5 * MiB);
    const { client, sent } = recordingClient();
    const store = new S3Store(client, testBucket, `t-${randomUUID()}`, { upload: smallParts });
    await store.putFile('small.bin', source);
    assert.deepEqual(sent, ['PutObjectCommand']);
    await assertRoundTrip(store, 'small.bin', source, digest);
  });

  it('round-trip an object over 2 GiB through putFile and getFile', async () => {
    const source = join(dir, 'over-2-gib.bin');
    const size = 2 * 1024 ** 3 + 5 * MiB + 123;
    const digest = await writeStampedFile(source, size);
    try {
      const { client, sent } = recordingClient();
      const store = new S3Store(client, testBucket, `t-${randomUUID()}`, { upload: defaultUploadOptions });
      await store.putFile('ckpt/model.safetensors', source);
      assert.equal(sent.filter((c) => c === 'UploadPartCommand').length, Math.ceil(size / (8 * MiB)));
      await assertRoundTrip(store, 'ckpt/model.safetensors', source, digest);
    } finally {
      await rm(source, { force: true });
    }
  });

  describe('in parts of 5 MiB', () => {
    let source: string;
    let digest: string;
    const size = 200 * MiB + 4321;
    const parts = Math.ceil(size / (5 * MiB));
    before(async () => {
      source = join(dir, 'parts.bin');
      digest = await writeStampedFile(source, size);
    });

    it('leave no object after a kill -9 mid-upload; the retry completes and leaves no incomplete upload of the key', async () => {
      const key = `killed-${randomUUID()}/weights.bin`;
      const { client } = recordingClient();
      const store = new S3Store(client, testBucket, '', { upload: smallParts });
      // Another key that the key is a prefix of: its incomplete upload is not the retry's to abort.
      const { UploadId: neighbour } = await client.send(new CreateMultipartUploadCommand({ Bucket: testBucket, Key: `${key}.neighbour` }));

      await killHard(await startScript(interruptedUpload, [String(s3.server.port), testBucket, key, source]));
      const [stale, ...more] = await incompleteUploads(client, key);
      assert.ok(stale && more.length === 0, 'the killed process left one incomplete upload');
      const { Parts = [] } = await client.send(new ListPartsCommand({ Bucket: testBucket, Key: key, UploadId: stale }));
      assert.ok(Parts.length >= 3, `parts of the killed upload are stored (${Parts.length})`);
      assert.equal(await store.exists(key), false, 'no object is visible at the key');

      await store.putFile(key, source);
      await assertRoundTrip(store, key, source, digest);
      assert.deepEqual(await incompleteUploads(client, key), []);
      assert.deepEqual(await incompleteUploads(client, `${key}.neighbour`), [neighbour]);
    });

    it('stop at the first failed part and abort the upload, leaving nothing at the key', async () => {
      const key = `failed-${randomUUID()}/weights.bin`;
      const { client, sent } = recordingClient((command, input) => {
        if (command === 'UploadPartCommand' && input.PartNumber === 3) throw new Error('injected failure of part 3');
      });
      const store = new S3Store(client, testBucket, '', { upload: smallParts });
      await assert.rejects(store.putFile(key, source), /injected failure of part 3/);
      const partsSent = sent.filter((c) => c === 'UploadPartCommand').length;
      assert.ok(partsSent <= 2 * smallParts.queueSize, `${partsSent} of ${parts} parts were sent after part 3 failed`);
      assert.ok(sent.includes('AbortMultipartUploadCommand'));
      assert.deepEqual(await incompleteUploads(client, key), []);
      assert.equal(await store.exists(key), false);
    });

    it('go up a few parts at a time and reassemble into the same bytes', async () => {
      const record = recordingClient();
      const store = new S3Store(record.client, testBucket, `t-${randomUUID()}`, { upload: smallParts });
      await store.putFile('weights.bin', source);
      assert.equal(record.sent.filter((c) => c === 'UploadPartCommand').length, parts);
      assert.equal(record.maxPartsInFlight, smallParts.queueSize);
      await assertRoundTrip(store, 'weights.bin', source, digest);
    });
  });
});
