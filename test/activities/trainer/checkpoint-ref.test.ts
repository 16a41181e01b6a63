import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveCheckpointRef } from '../../../activities/trainer/index.js';

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
});
