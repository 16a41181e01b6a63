import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicy, resolveCheckpointRef } from '../../../activities/trainer/index.js';
import { openStore } from '../../../activities/storage/index.js';

describe('checkpoint references', () => {
  it('resolve model:<name> under the machine models directory', () => {
    assert.equal(resolveCheckpointRef('model:smollm2-135m-instruct', '/cache/models'), '/cache/models/smollm2-135m-instruct');
  });

  it('leave directories and object-store URIs as they are', () => {
    for (const ref of ['/ckpt/code', 's3://bucket/runs/r/checkpoints/code/iter-0', 'file:///x/y']) {
      assert.equal(resolveCheckpointRef(ref, '/cache/models'), ref);
    }
  });

  it('reject a model name that could leave the models directory', () => {
    assert.throws(() => resolveCheckpointRef('model:../etc', '/cache/models'), /model:<name>/);
  });

  it('install a model the worker lacks, and fail without retry for a model nobody can install', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'code-a1-models-'));
    try {
      const options = { openStore: (uri: string) => openStore(uri), modelsDir: join(cache, 'models'), cacheDir: join(cache, 'downloads') };
      await assert.rejects(loadPolicy('model:no-such-model', options), { name: 'ConfigError', message: /could not install model:no-such-model.*unknown model 'no-such-model'/s });
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
