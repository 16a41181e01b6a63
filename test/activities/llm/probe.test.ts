import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { probeFor } from '../../../activities/llm/probe.js';
import { InvalidArtifactError } from '../../../activities/artifact-errors.js';

const record = {
  format: 'code-a1-probe-v1',
  messages: [{ role: 'user', content: 'Say hi.' }],
  maxTokens: 2,
  dtype: 'float32',
  current: { tokenIds: [1, 2], tokens: ['Hi', '!'], logprobs: [-0.1, -0.2] },
};

describe('the probe a publish is checked against', () => {
  const never = () => assert.fail('nothing to warn about');

  it("is the trained checkpoint's probe.json", () => {
    assert.deepEqual(probeFor('s3://b/ckpt', JSON.stringify(record), true, 'require', never), record);
  });

  it('is absent for a model the run starts from: it is trusted', () => {
    assert.equal(probeFor('model:qwen', undefined, false, 'require', never), undefined);
  });

  it('refuses a trained checkpoint without one, naming the way out', () => {
    assert.throws(
      () => probeFor('s3://b/ckpt', undefined, true, 'require', never),
      (err: unknown) => err instanceof InvalidArtifactError && /s3:\/\/b\/ckpt has no probe\.json/.test(err.message) && /"probe": "warn"/.test(err.message),
    );
  });

  it('refuses a malformed one with what is wrong, also for a model the run starts from', () => {
    assert.throws(() => probeFor('s3://b/ckpt', '{"maxTokens": 2}', true, 'require', never), /malformed probe\.json: .*messages/);
    assert.throws(() => probeFor('model:qwen', 'not json', false, undefined, never), /malformed probe\.json: not JSON/);
  });

  it('with probe "warn" publishes unverified and reports each one', () => {
    const warned: string[] = [];
    assert.equal(probeFor('s3://b/ckpt', undefined, true, 'warn', (why) => warned.push(why)), undefined);
    assert.equal(probeFor('s3://b/ckpt', '[]', true, 'warn', (why) => warned.push(why)), undefined);
    assert.equal(warned.length, 2);
    assert.match(warned[0]!, /has no probe\.json/);
    assert.match(warned[1]!, /malformed/);
  });
});
