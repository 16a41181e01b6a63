import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { ConfigError, parseRunConfig } from '../../config/run-config.js';
import { rawConfig } from '../support/config.js';

describe('run config', () => {
  it('fills the paper configuration as defaults', () => {
    const config = parseRunConfig(rawConfig('/tmp/x', { algorithm: undefined, timeouts: undefined }));
    assert.deepEqual(
      [config.algorithm.batchSize, config.algorithm.nCode, config.algorithm.nTest, config.algorithm.testsPerResponse],
      [256, 8, 8, 8],
    );
    assert.equal(config.algorithm.alpha, 0.5);
    assert.equal(config.algorithm.mistakeBookTopK, 8);
    assert.equal(config.algorithm.updateN, 1);
    assert.deepEqual([config.trainer.clipLow, config.trainer.clipHigh, config.trainer.klCoef], [0.2, 0.28, 0.001]);
    assert.equal(config.trainer.learningRate, 1e-6);
    assert.equal(config.trainer.dtype, 'auto');
    assert.equal(config.models.code.sampling.maxTokens, 4096);
  });

  it('survives a JSON round trip unchanged, as workflow input must', () => {
    const config = parseRunConfig(rawConfig('/tmp/x'));
    assert.deepEqual(parseRunConfig(JSON.parse(JSON.stringify(config))), config);
  });

  const bad: Array<[string, (c: Record<string, any>) => void, RegExp]> = [
    ['a run ID with a slash', (c) => (c.runId = 'a/b'), /runId/],
    ['alpha above 1', (c) => (c.algorithm = { alpha: 1.5 }), /algorithm\.alpha/],
    ['a zero batch', (c) => (c.algorithm = { batchSize: 0 }), /algorithm\.batchSize/],
    ['a storage URI with another scheme', (c) => (c.storageUri = 'gs://bucket'), /storageUri/],
    ['a model base URL that is not a URL', (c) => (c.models.code.baseUrl = 'localhost'), /models\.code\.baseUrl/],
    ['an unknown field (a typo must not be ignored)', (c) => (c.algorithm = { nCodes: 4 }), /algorithm/],
    ['a missing iteration count', (c) => delete c.iterations, /iterations/],
    ['a server kind publishing cannot speak to', (c) => (c.models.code.server = 'tgi'), /models\.code\.server/],
    ['a trainer dtype the trainer does not compute in', (c) => (c.trainer = { dtype: 'float16' }), /trainer\.dtype/],
    ['a serving host that cannot name a task queue', (c) => (c.models.test.replicas = [{ baseUrl: 'http://h:1/v1', host: 'a b' }]), /models\.test\.replicas\.0\.host/],
  ];
  for (const [what, mutate, field] of bad) {
    it(`rejects ${what}, naming the field`, () => {
      const config = structuredClone(rawConfig('/tmp/x')) as Record<string, any>;
      mutate(config);
      assert.throws(() => parseRunConfig(config), (err: unknown) => err instanceof ConfigError && field.test(err.message));
    });
  }

  it('lists every server of a role, baseUrl first, with the host whose publish worker serves it', async () => {
    const { replicasOf } = await import('../../config/run-config.js');
    const raw = rawConfig('/tmp/x');
    const config = parseRunConfig({
      ...raw,
      models: { ...raw.models, code: { ...raw.models.code, server: 'vllm', host: 'gpu-a', replicas: [{ baseUrl: 'http://gpu-b:8000/v1', host: 'gpu-b' }] } },
    });
    assert.deepEqual(replicasOf(config.models.code), [
      { baseUrl: 'http://127.0.0.1:1/v1', host: 'gpu-a' },
      { baseUrl: 'http://gpu-b:8000/v1', host: 'gpu-b' },
    ]);
    assert.deepEqual(replicasOf(config.models.test), [{ baseUrl: 'http://127.0.0.1:1/v1' }]);
    assert.equal(config.models.test.server, 'embedded');
  });

  it('exports its JSON Schema through `code-a1 schema`', async () => {
    const { stdout } = await execa('node', ['bin/code-a1.js', 'schema']);
    const schema = JSON.parse(stdout);
    assert.deepEqual(schema.required.sort(), ['iterations', 'models', 'runId', 'storageUri']);
    assert.equal(schema.properties.algorithm.properties.alpha.maximum, 1);
  });
});
