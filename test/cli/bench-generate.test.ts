import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { codeStageShape, cpuSummary, median, summarize } from '../../cli/commands/bench/generate.js';
import { llamaRequestBody, llamaServerArgs } from '../../cli/commands/bench/llama-cpp.js';
import { parseRunConfig } from '../../config/run-config.js';

const localConfig = fileURLToPath(new URL('../../configs/local.json', import.meta.url));

describe('bench generate --compare llama.cpp', () => {
  it('takes the code stage concurrency from the config: min(batchSize, code concurrency) requests of nCode samples', async () => {
    const config = parseRunConfig(JSON.parse(await readFile(localConfig, 'utf8')));
    const shape = codeStageShape(config);
    const problems = Math.min(config.algorithm.batchSize, config.models.code.concurrency);
    assert.deepEqual(shape, {
      problems,
      n: config.algorithm.nCode,
      maxTokens: config.models.code.sampling.maxTokens,
      streams: problems * config.algorithm.nCode,
    });
    const capped = codeStageShape({ ...config, models: { ...config.models, code: { ...config.models.code, concurrency: 2 } } });
    assert.equal(capped.streams, 2 * config.algorithm.nCode);
  });

  it('reports aggregate tokens over wall time and the mean rate of the streams', () => {
    const result = summarize(
      [
        { tokens: 100, seconds: 10 },
        { tokens: 100, seconds: 5 },
      ],
      10,
    );
    assert.equal(result.completionTokens, 200);
    assert.equal(result.tokensPerSecond, 20);
    assert.equal(result.perStreamTokensPerSecond, 15);
  });

  it('takes the median of the rounds', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
  });

  it('names the CPU and the SIMD flags that decide the kernels', () => {
    const cpuinfo = 'processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma f16c avx512f avx512_bf16\n';
    assert.deepEqual(cpuSummary(cpuinfo, 2), {
      model: 'AMD EPYC 7B13',
      cores: 2,
      flags: ['avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512_bf16'],
      nativeBf16: true,
    });
    assert.equal(cpuSummary('flags\t: avx avx2\n', 2).nativeBf16, false);
  });

  it('gives llama-server one slot per stream and the context they need together', () => {
    const args = llamaServerArgs({ gguf: '/m.gguf', port: 9000, parallel: 16, threads: 2, contextPerSlot: 1344 });
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(value('--parallel'), '16');
    assert.equal(value('-t'), '2');
    assert.equal(value('-c'), String(16 * 1344));
    assert.equal(value('-m'), '/m.gguf');
  });

  it('turns off the samplers llama.cpp applies by default, so both engines sample the full distribution', () => {
    const body = llamaRequestBody({ messages: [], temperature: 1, topP: 1, maxTokens: 320, seed: 7, ignoreEos: true });
    assert.deepEqual(
      { top_k: body.top_k, min_p: body.min_p, repeat_penalty: body.repeat_penalty, ignore_eos: body.ignore_eos },
      { top_k: 0, min_p: 0, repeat_penalty: 1, ignore_eos: true },
    );
  });
});
