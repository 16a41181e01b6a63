import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import type { ObjectStore } from '../../activities/storage/index.js';
import { S3Store, createS3Client } from '../../activities/storage/s3-store.js';
import { tempDir } from './config.js';
import { testBucket, testS3Connection } from './s3.js';
import type { S3PutCounter } from './s3-put-counter.js';
import { notWrittenOnce, startS3PutCounter } from './s3-put-counter.js';

describe('the S3 PUT counter', () => {
  let counter: S3PutCounter;
  let store: ObjectStore;
  let prefix: string;
  before(async () => {
    counter = await startS3PutCounter(testS3Connection().endpoint!);
    prefix = `t-${randomUUID()}`;
    // Small parts, so that a 12 MiB file goes up as a multipart upload of three parts.
    store = new S3Store(createS3Client({ ...testS3Connection(), endpoint: counter.endpoint }), testBucket, prefix, { upload: { minPartSize: 5 * 1024 * 1024, queueSize: 2 } });
  });
  after(() => counter.close());
  const object = (key: string) => `${testBucket}/${prefix}/${key}`;

  it('forwards signed requests and counts each object write that landed, a completed multipart upload as one', async () => {
    await store.put('a.json', '{"a":1}');
    assert.equal(await store.putIfAbsent('b.json', 'first'), true);
    assert.equal(await store.putIfAbsent('b.json', 'second'), false, 'the losing conditional write is refused by the server');
    const dir = await tempDir();
    await writeFile(`${dir}/big`, Buffer.alloc(12 * 1024 * 1024, 7));
    await store.putFile('big.bin', `${dir}/big`);
    await store.put('a.json', '{"a":2}');

    assert.equal(new TextDecoder().decode(await store.get('a.json')), '{"a":2}');
    assert.equal((await store.get('big.bin'))?.length, 12 * 1024 * 1024);
    assert.deepEqual(await store.list(''), ['a.json', 'b.json', 'big.bin']);
    assert.deepEqual(
      [...counter.writes()].filter(([key]) => key.startsWith(`${testBucket}/${prefix}/`)),
      [[object('a.json'), 2], [object('b.json'), 1], [object('big.bin'), 1]],
    );
  });

  it('names the keys not written exactly once: a double write, a missing write', () => {
    const writes = new Map([[object('a.json'), 2], [object('b.json'), 1], [object('c.json'), 3]]);
    assert.deepEqual(
      [...notWrittenOnce(writes, `${testBucket}/${prefix}/`, [object('a.json'), object('b.json'), object('missing.json')])],
      [[object('a.json'), 2], [object('missing.json'), 0], [object('c.json'), 3]],
    );
    assert.equal(notWrittenOnce(writes, `${testBucket}/${prefix}/`, [object('b.json')]).size, 2);
    assert.equal(notWrittenOnce(new Map([[object('b.json'), 1]]), `${testBucket}/${prefix}/`, [object('b.json')]).size, 0);
  });

  it('holds the answer to a write that landed until released', async () => {
    const held = counter.holdWrite((key) => key.endsWith('/held.json'));
    let answered = false;
    const writing = store.put('held.json', 'x').then(() => (answered = true));
    assert.equal(await held.landed, object('held.json'));
    assert.equal(await store.exists('held.json'), true, 'the server has the object');
    assert.equal(answered, false, 'the writer has no answer yet');
    held.release();
    await writing;
    assert.equal(answered, true);
  });
});
