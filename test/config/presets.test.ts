import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseEvaluationConfig } from '../../activities/evaluation/config.js';
import { parseRunConfig, replicasOf } from '../../config/run-config.js';
import type { RunConfig } from '../../config/run-config.js';

const configs = fileURLToPath(new URL('../../configs/', import.meta.url));
const read = async (name: string): Promise<unknown> => JSON.parse(await readFile(`${configs}${name}`, 'utf8'));
const preset = async (name: string): Promise<RunConfig> => parseRunConfig(await read(`${name}.json`));

describe('the configs shipped in configs/', () => {
  it('all parse with the parser run and eval use (an evalId marks an evaluation config)', async () => {
    const files = (await readdir(configs)).filter((f) => f.endsWith('.json'));
    assert.ok(files.includes('paper-qwen2.5-coder-1.5b.json') && files.includes('gpu-lora-qwen2.5-coder-1.5b.json'), files.join(', '));
    for (const file of files) {
      const raw = await read(file);
      const parse = typeof raw === 'object' && raw !== null && 'evalId' in raw ? parseEvaluationConfig : parseRunConfig;
      assert.doesNotThrow(() => parse(raw), file);
    }
  });

  it("the paper preset carries the paper's numbers: full weights at 1e-6 with 10 warm-up steps on 4 + 4 devices, vLLM or SGLang, KodCode from S3", async () => {
    const config = await preset('paper-qwen2.5-coder-1.5b');
    const { batchSize, nCode, nTest, testsPerResponse, alpha, mistakeBookTopK, updateN, dropZeroVarianceGroups } = config.algorithm;
    assert.deepEqual(
      { batchSize, nCode, nTest, testsPerResponse, alpha, mistakeBookTopK, updateN, dropZeroVarianceGroups },
      { batchSize: 256, nCode: 8, nTest: 8, testsPerResponse: 8, alpha: 0.5, mistakeBookTopK: 8, updateN: 1, dropZeroVarianceGroups: true },
    );
    const { learningRate, warmupSteps, weightDecay, gradClip, clipLow, clipHigh, klCoef, ppoEpochs, devices, parallelRoles, lora } = config.trainer;
    assert.deepEqual(
      { learningRate, warmupSteps, weightDecay, gradClip, clipLow, clipHigh, klCoef, ppoEpochs, devices, parallelRoles, lora },
      { learningRate: 1e-6, warmupSteps: 10, weightDecay: 0.1, gradClip: 1, clipLow: 0.2, clipHigh: 0.28, klCoef: 0.001, ppoEpochs: 1, devices: 4, parallelRoles: true, lora: undefined },
    );
    for (const role of ['code', 'test'] as const) {
      const model = config.models[role];
      assert.ok(['vllm', 'sglang'].includes(model.server), model.server);
      assert.deepEqual(model.sampling, { temperature: 1, topP: 1, maxTokens: 4096 });
      assert.ok(replicasOf(model).every((r) => r.host), `every ${role} server has the host of its publish worker`);
    }
    assert.match(config.dataset.uri, /^s3:\/\/.+\.parquet$/);
    assert.deepEqual([config.evaluation.samples, config.evaluation.ks, config.evaluation.sampling.temperature, config.evaluation.sampling.topP], [32, [1, 8, 16, 32], 0.7, 0.95]);
  });

  it('the LoRA preset trains adapters on one GPU, both served by one vLLM with runtime LoRA, on the same data', async () => {
    const [lora, paper] = [await preset('gpu-lora-qwen2.5-coder-1.5b'), await preset('paper-qwen2.5-coder-1.5b')];
    assert.equal(lora.trainer.lora?.rank, 16);
    assert.equal(lora.trainer.devices, 1);
    assert.equal(lora.models.code.server, 'vllm');
    assert.equal(lora.models.code.baseUrl, lora.models.test.baseUrl);
    assert.deepEqual(lora.algorithm, paper.algorithm);
    assert.equal(lora.dataset.uri, paper.dataset.uri);
  });
});
