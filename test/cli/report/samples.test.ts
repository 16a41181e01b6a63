import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { openStore, putJson } from '../../../activities/storage/index.js';
import { readRolloutSamples } from '../../../cli/report/index.js';
import type { IterationSamples, RolloutSample } from '../../../cli/report/index.js';
import { keys } from '../../../workflows/contract.js';
import { tempDir, uniqueRunId } from '../../support/config.js';
import type { FixtureProblem } from './fixtures.js';
import { writeIterationArtifacts } from './fixtures.js';

const dir = await tempDir('code-a1-samples-');
const store = openStore(`file://${join(dir, 'store')}`);
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const passing = { test: 'assert f(1) == 1', valid: true, passed: true };
const failing = { test: 'assert f(2) == 2', valid: true, passed: false };
const invalid = { test: 'assert f(3) == 4', valid: false };

/** Problem `q<i>`: with `valid`, candidate 1 is valid code (candidate 0 never is), else neither. */
function problem(i: number, valid: boolean): FixtureProblem {
  return {
    questionId: `q${i}`,
    description: `Return x (problem ${i}).`,
    candidates: [
      { code: null, valid: false, responses: [] },
      { code: `def f(x):\n    return x  # ${i}`, valid, responses: [[passing, failing, invalid], []] },
    ],
  };
}

function samplesOf(result: IterationSamples): RolloutSample[] {
  assert.ok('samples' in result, `samples expected, got: ${JSON.stringify(result)}`);
  return result.samples;
}

describe('sample rollouts read from storage', () => {
  it('takes the first problems of the batch that have a valid candidate, with that candidate, its code, tests, verdicts and rewards', async () => {
    const runId = uniqueRunId('samples');
    const scores = await writeIterationArtifacts(store, runId, 0, [problem(0, false), problem(1, true), problem(2, true), problem(3, true)]);
    const [result] = await readRolloutSamples(store, runId, [0]);
    const samples = samplesOf(result!);
    assert.deepEqual(samples.map((s) => [s.questionId, s.candidateIndex, s.candidates, s.validCode]), [['q1', 1, 2, true], ['q2', 1, 2, true]]);
    const [first] = samples;
    assert.equal(first!.description, 'Return x (problem 1).');
    assert.equal(first!.code, 'def f(x):\n    return x  # 1');
    const scored = scores.problems[1]!.candidates[1]!;
    assert.equal(first!.reward, scored.rewardA);
    assert.deepEqual(first!.responses, [
      {
        reward: scored.responses[0]!.rewardB,
        tests: [
          { test: passing.test, valid: true, passed: true },
          { test: failing.test, valid: true, passed: false },
          { test: invalid.test, valid: false, passed: null },
        ],
      },
      { reward: scored.responses[1]!.rewardB, tests: [] },
    ]);
  });

  it('tops up with the first problems without a valid candidate, in batch order, their tests not run', async () => {
    const runId = uniqueRunId('samples');
    await writeIterationArtifacts(store, runId, 0, [problem(0, false), problem(1, false), problem(2, true)], 1);
    const samples = samplesOf((await readRolloutSamples(store, runId, [0]))[0]!);
    assert.deepEqual(samples.map((s) => [s.questionId, s.candidateIndex, s.validCode]), [['q0', 0, false], ['q2', 1, true]]);
    assert.equal(samples[0]!.code, null);
    assert.deepEqual(samples[0]!.responses, []);
  });

  it('samples only the last iterations asked for', async () => {
    const runId = uniqueRunId('samples');
    for (const i of [3, 4]) await writeIterationArtifacts(store, runId, i, [problem(0, true)]);
    const result = await readRolloutSamples(store, runId, [4, 0, 1, 2, 3], { iterations: 2, problems: 1 });
    assert.deepEqual(result.map((r) => [r.iteration, samplesOf(r).length]), [[3, 1], [4, 1]]);
  });

  it('reports an iteration with a missing or malformed artifact as unavailable, naming it, and reads the others', async () => {
    const runId = uniqueRunId('samples');
    const problems = [problem(0, true)];
    for (const i of [0, 1, 2, 3, 4, 5]) await writeIterationArtifacts(store, runId, i, problems);
    const stage = (i: number, name: string) => keys.stage(runId, i, name);
    await store.delete(stage(1, 'scores.json'));
    await store.put(stage(2, 'execution/shard-00000.json'), '[{"questionId": ');
    await putJson(store, stage(3, 'code/shard-00000.json'), [{ questionId: 'q0', code: 7 }]);
    await putJson(store, stage(4, 'execution/manifest.json'), { shards: [keys.iterationRecord(runId, 0)], count: 1 });
    await store.delete(stage(5, 'batch.json'));

    const result = await readRolloutSamples(store, runId, [0, 1, 2, 3, 4, 5, 6], { iterations: 10 });
    const unavailable = result.map((r) => ('unavailable' in r ? r.unavailable : `${samplesOf(r).length} samples`));
    assert.deepEqual(unavailable, [
      '1 samples',
      `${stage(1, 'scores.json')} is missing`,
      `${stage(2, 'execution/shard-00000.json')} is not JSON`,
      `${stage(3, 'code/shard-00000.json')} is not code rollouts`,
      `${stage(4, 'execution/manifest.json')} lists ${keys.iterationRecord(runId, 0)} outside ${stage(4, 'execution')}/`,
      `${stage(5, 'batch.json')} is missing`,
      `${stage(6, 'execution/manifest.json')} is missing`,
    ]);
  });
});
