import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Connection } from '../../../activities/storage/index.js';
import { StorageConfigError, openStore } from '../../../activities/storage/index.js';
import type { PrivateS3 } from '../../support/s3.js';
import { privateS3, testBucket } from '../../support/s3.js';
import { tempDir } from '../../support/config.js';
import type { FaultProxy } from '../../support/fault-proxy.js';
import { startFaultProxy } from '../../support/fault-proxy.js';

let s3: PrivateS3;
let proxy: FaultProxy;
let dir: string;
let file: string;
before(async () => {
  s3 = await privateS3();
  proxy = await startFaultProxy(s3.connection.endpoint!);
  dir = await tempDir('code-a1-s3-errors-');
  file = join(dir, 'weights.bin');
  await writeFile(file, Buffer.alloc(1234, 1));
});
after(async () => {
  await proxy.close();
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The upload fails with StorageConfigError (non-retryable) naming the object, its size and the cause. */
async function assertPermanent(connection: S3Connection, cause: RegExp, bucket = testBucket): Promise<void> {
  const store = openStore(`s3://${bucket}/run-1`, connection);
  await assert.rejects(store.putFile('ckpt/weights.bin', file), (err: Error) => {
    assert.ok(err instanceof StorageConfigError, `${err.name}: ${err.message}`);
    assert.match(err.message, /ckpt\/weights\.bin \(1234 bytes\)/);
    const { name, message, $metadata } = err.cause as Error & { $metadata?: { httpStatusCode?: number } };
    assert.match(`${name} ${message} status=${$metadata?.httpStatusCode}`, cause);
    return true;
  });
}

describe('S3 errors that retrying cannot fix', () => {
  it('fail an upload to a bucket that does not exist with a StorageConfigError naming the object and its size', async () => {
    await assertPermanent(s3.connection, /NoSuchBucket/, 'no-such-bucket-code-a1');
  });

  it('fail on a wrong secret key, and on an access key the server does not know, even for reads', async () => {
    await assertPermanent({ ...s3.connection, secretAccessKey: 'wrong' }, /SignatureDoesNotMatch/);
    const stranger = { ...s3.connection, accessKeyId: 'nobody' };
    await assertPermanent(stranger, /XAdminUserNotFound/);
    await assert.rejects(openStore(`s3://${testBucket}`, stranger).get('k'), StorageConfigError, 'not taken for a missing object');
  });

  it('fail on an object the server refuses as too large, with or without an S3 error body', async () => {
    const viaProxy = { ...s3.connection, endpoint: proxy.baseUrl };
    proxy.enqueue({
      kind: 'status',
      status: 400,
      headers: { 'content-type': 'application/xml' },
      body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>',
    });
    await assertPermanent(viaProxy, /EntityTooLarge/);
    proxy.enqueue({ kind: 'status', status: 413, headers: { 'content-type': 'text/html' }, body: '<html>413 Request Entity Too Large</html>' });
    await assertPermanent(viaProxy, / status=413$/);
  });

  it('leave server errors retryable', async () => {
    proxy.enqueue({ kind: 'status', status: 500, headers: { 'content-type': 'application/xml' }, body: '<Error><Code>InternalError</Code><Message>disk hiccup</Message></Error>' });
    const store = openStore(`s3://${testBucket}/run-1`, { ...s3.connection, endpoint: proxy.baseUrl });
    await assert.rejects(store.putFile('ckpt/weights.bin', file), (err: Error) => !(err instanceof StorageConfigError) && /InternalError/.test(err.name));
  });
});
