import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { localS3Connection, startS3, stopS3 } from '../../infra/s3-server.js';
import { freePort, isAlive } from '../../infra/process.js';
import { openStore } from '../../activities/storage/index.js';
import type { PrivateS3 } from '../support/s3.js';
import { privateS3 } from '../support/s3.js';
import { tempDir } from '../support/config.js';

describe('the local S3 server', () => {
  let s3: PrivateS3;
  before(async () => (s3 = await privateS3(['code-a1-first', 'code-a1-second'])));
  after(() => s3.stop());

  it('is found running by a second start, which returns its pid and starts nothing', async () => {
    assert.equal(await startS3(s3.binary, s3.server), s3.pid);
    assert.ok(isAlive(s3.pid));
  });

  it('creates every bucket and keeps objects and their metadata across a restart', async () => {
    const stores = s3.server.buckets.map((b) => openStore(`s3://${b}/restart`, s3.connection));
    await Promise.all(stores.map((store, i) => store.put('kept.txt', `bucket ${i}`)));
    await stopS3(s3.server);
    assert.equal(isAlive(s3.pid), false);
    s3.pid = await startS3(s3.binary, s3.server);
    for (const [i, store] of stores.entries()) {
      assert.equal(Buffer.from((await store.get('kept.txt'))!).toString(), `bucket ${i}`);
      assert.equal(await store.putIfAbsent('kept.txt', 'again'), false, 'the conditional write sees the kept object');
    }
  });

  it('keeps metadata in a sidecar directory once the state directory has one', async () => {
    const server = { stateDir: await tempDir('code-a1-s3-sidecar-'), port: await freePort(), buckets: ['code-a1-sidecar'] };
    await mkdir(`${server.stateDir}/s3-meta`);
    try {
      await startS3(s3.binary, server);
      const store = openStore('s3://code-a1-sidecar', localS3Connection(server.port));
      assert.equal(await store.putIfAbsent('a/b.txt', 'once'), true);
      assert.equal(await store.putIfAbsent('a/b.txt', 'twice'), false);
      assert.equal(Buffer.from((await store.get('a/b.txt'))!).toString(), 'once');
      assert.ok((await readdir(`${server.stateDir}/s3-meta`, { recursive: true })).length > 0, 'metadata went to the sidecar');
    } finally {
      await stopS3(server);
      await rm(server.stateDir, { recursive: true, force: true });
    }
  });

  it('refuses a port that another process listens on', async () => {
    const foreign = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => foreign.listen(port, '127.0.0.1', resolve));
    const stateDir = await tempDir('code-a1-s3-refused-');
    try {
      await assert.rejects(startS3(s3.binary, { stateDir, port, buckets: ['code-a1-test'] }), new RegExp(`port ${port} is in use`));
    } finally {
      await new Promise((resolve) => foreign.close(resolve));
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
