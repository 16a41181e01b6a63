import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { StorageConfigError, openStore, putJsonOnce } from '../../../activities/storage/index.js';
import { tempDir } from '../../support/config.js';
import type { PrivateS3 } from '../../support/s3.js';
import { privateS3, testBucket } from '../../support/s3.js';

let s3: PrivateS3;
before(async () => (s3 = await privateS3()));
after(() => s3.stop());

/** The same contract, run against every backend the project ships (S3: the stack's versitygw). */
const backends: Record<string, () => Promise<ObjectStore>> = {
  'file://': async () => openStore(`file://${await tempDir()}`),
  's3://': async () => openStore(`s3://${testBucket}/t-${randomUUID()}`, s3.connection),
};

for (const [name, open] of Object.entries(backends)) {
  describe(`object store over ${name}`, () => {
    it('reads back exactly the bytes it wrote and reports missing keys as undefined', async () => {
      const store = await open();
      const bytes = new Uint8Array([0, 255, 10, 13, 128]);
      await store.put('a/b/c.bin', bytes);
      assert.deepEqual(Buffer.from((await store.get('a/b/c.bin'))!), Buffer.from(bytes));
      assert.equal(await store.get('a/b/missing.bin'), undefined);
      assert.equal(await store.exists('a/b/c.bin'), true);
      assert.equal(await store.exists('a/b'), false);
    });

    it('replaces an object on put but never on putIfAbsent', async () => {
      const store = await open();
      assert.equal(await store.putIfAbsent('k.json', 'first'), true);
      assert.equal(await store.putIfAbsent('k.json', 'second'), false);
      assert.equal(Buffer.from((await store.get('k.json'))!).toString(), 'first');
      await store.put('k.json', 'third');
      assert.equal(Buffer.from((await store.get('k.json'))!).toString(), 'third');
    });

    it('lets exactly one of many concurrent putIfAbsent calls win', async () => {
      const store = await open();
      const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => store.putIfAbsent('race', `writer-${i}`)));
      assert.equal(wins.filter(Boolean).length, 1);
      const stored = Buffer.from((await store.get('race'))!).toString();
      assert.equal(stored, `writer-${wins.indexOf(true)}`);
    });

    it('returns the stored value to a second write-once writer', async () => {
      const store = await open();
      assert.deepEqual(await putJsonOnce(store, 'once.json', { n: 1 }), { n: 1 });
      assert.deepEqual(await putJsonOnce(store, 'once.json', { n: 2 }), { n: 1 });
    });

    it('lists every key under a prefix, sorted, beyond one page of results', async () => {
      const store = await open();
      const keys = Array.from({ length: 1_050 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, 'x')));
      await store.put('other/x', 'x');
      assert.deepEqual(await store.list('many/'), keys);
      await store.delete('many/00000');
      assert.equal((await store.list('many/')).length, 1_049);
    });

    it('streams files in and out', async () => {
      const store = await open();
      const dir = await tempDir();
      const source = join(dir, 'weights.bin');
      await writeFile(source, Buffer.alloc(3 * 1024 * 1024, 7));
      await store.putFile('ckpt/weights.bin', source);
      assert.equal(await store.getFile('ckpt/weights.bin', join(dir, 'copy/weights.bin')), true);
      assert.deepEqual(await readFile(join(dir, 'copy/weights.bin')), await readFile(source));
      assert.equal(await store.getFile('ckpt/none.bin', join(dir, 'none.bin')), false);
    });

    it('rejects keys that could escape the store root', async () => {
      const store = await open();
      for (const key of ['../x', '/abs', 'a/../../b', '']) {
        await assert.rejects(store.put(key, 'x'), StorageConfigError, key);
      }
    });
  });
}

describe('openStore', () => {
  it('explains URIs it cannot open', () => {
    assert.throws(() => openStore('not a uri'), /not a URI/);
    assert.throws(() => openStore('gs://bucket/x'), /unsupported scheme/);
    assert.throws(() => openStore('s3://bucket/x'), /needs an S3 connection/);
  });

  it('fails with a non-retryable storage error for a bucket that does not exist', async () => {
    const store = openStore('s3://no-such-bucket-code-a1/x', s3.connection);
    await assert.rejects(store.put('k', 'v'), StorageConfigError);
  });
});
