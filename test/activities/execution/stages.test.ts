import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createExecuteActivity, createMergeExecutionActivity } from '../../../activities/execute.js';
import { createScoreActivity } from '../../../activities/score.js';
import { createUpdateMistakeBookActivity } from '../../../activities/update-mistake-book.js';
import { extractAsserts, extractCode, nonprintableRatio } from '../../../activities/parsing/index.js';
import type { CodeRollout, Problem, TestRollout } from '../../../activities/records.js';
import type { Sandbox } from '../../../activities/sandbox/index.js';
import { createSandbox } from '../../../activities/sandbox/index.js';
import type { ScoresRecord } from '../../../activities/scoring/index.js';
import type { ProblemExecution } from '../../../activities/scoring/index.js';
import { getJson, openStore, putJson } from '../../../activities/storage/index.js';
import { readShardedRecords, shardKey, manifestKey } from '../../../activities/storage/manifest.js';
import { keys } from '../../../workflows/contract.js';
import type { StageResult } from '../../../workflows/contract.js';
import { tempDir, testConfig } from '../../support/config.js';

const problem: Problem = {
  questionId: 'p/add-one',
  description: 'Return x plus one.',
  entryPoint: 'add_one',
  gtCode: 'def add_one(x):\n    return x + 1\n',
  dataSource: 'test',
};

/** Model answers as they come back from the server: prose, fences, respelled duplicates. */
const codeAnswers = [
  'Here you go:\n```python\ndef add_one(x):\n    return x + 1\n```',
  '```python\ndef add_one(x):\n    return x + 1 if x < 10 else x\n```\nThis handles all cases.',
  'I cannot help with that.',
];
const testAnswers: Record<number, string> = {
  0: '```python\nassert add_one(1) == 2\nassert add_one(5) == 7  # wrong claim\n```',
  1: 'Attack the branch:\n```python\nassert add_one(10) == 11\nassert add_one(3) == 4\nassert add_one( 3 ) == 4\n```',
};

function sample(response: string) {
  return {
    messages: [], response, finishReason: 'stop', truncated: false, promptTokens: 1, completionTokens: 1,
    promptVersion: 'test', checkpoint: 'init',
  };
}

describe('execute, score and updateMistakeBook on parsed model output', () => {
  let sandbox: Sandbox;
  before(async () => (sandbox = await createSandbox({ concurrency: 2 })));
  after(() => sandbox.close());

  it('turns model answers into the rewards and book of the algorithm, through the real sandbox', async () => {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`, { algorithm: { nCode: 3, nTest: 1 } });
    const store = openStore(config.storageUri);
    const ref = { runId: config.runId, iteration: 0, storageUri: config.storageUri };
    const at = (name: string) => keys.stage(ref.runId, 0, name);

    const code: CodeRollout[] = codeAnswers.map((text, candidateIndex) => ({
      ...sample(text), questionId: problem.questionId, candidateIndex, code: extractCode(text, { entryPoint: problem.entryPoint }),
    }));
    const tests: TestRollout[] = Object.entries(testAnswers).map(([i, text]) => ({
      ...sample(text), questionId: problem.questionId, candidateIndex: Number(i), responseIndex: 0,
      asserts: extractAsserts(text), nonprintableRatio: nonprintableRatio(text),
    }));
    await putJson(store, at('batch.json'), { problems: [problem], dataset: {} });
    for (const [name, records] of [['code', code], ['tests', tests]] as const) {
      await putJson(store, shardKey(at(name), 0), records);
      await putJson(store, manifestKey(at(name)), { shards: [shardKey(at(name), 0)], count: records.length });
    }

    const env = new MockActivityEnvironment();
    const deps = { openStore: (uri: string) => openStore(uri) };
    const execution: StageResult = await env.run(createExecuteActivity({ ...deps, sandbox }).execute, {
      ...ref, batchKey: at('batch.json'), codeKey: manifestKey(at('code')), testsKey: manifestKey(at('tests')),
      mistakeBookKey: null, algorithm: config.algorithm, sandbox: config.sandbox,
    });
    const [record] = await readShardedRecords<ProblemExecution>(store, execution.key);
    assert.deepEqual(record!.candidates.map((c) => c.valid), [true, true, false]);
    assert.deepEqual(record!.candidates[1]!.responses[0]!.asserts, [
      { test: 'assert add_one(10) == 11', valid: true, passed: false },
      { test: 'assert add_one(3) == 4', valid: true, passed: true },
      { test: 'assert add_one(3) == 4', valid: true, passed: true },
    ]);
    assert.equal(record!.candidates[0]!.responses[0]!.asserts[1]!.valid, false, 'a wrong claimed value is invalid');

    const scores: StageResult = await env.run(createScoreActivity(deps).score, { ...ref, executionKey: execution.key, mistakeBookKey: null, algorithm: config.algorithm });
    const scored = (await getJson<ScoresRecord>(store, scores.key))!.problems[0]!;
    // Candidate 0: V = 1 of T = 8, one invalid: valid = 1/8; passes its one test; M empty.
    assert.equal(scored.candidates[0]!.rewardA, 1);
    assert.equal(scored.candidates[0]!.responses[0]!.rewardB, 0.5 * 0.125 + 0.5 * 0);
    // Candidate 1: the respelled copy is a duplicate (invalid); V = 2, inv = 1; fails one of two.
    assert.equal(scored.candidates[1]!.rewardA, 0.5);
    assert.equal(scored.candidates[1]!.responses[0]!.rewardB, 0.5 * 0.25 + 0.5 * (1 / 8));
    assert.equal(scored.candidates[2]!.rewardA, 0);

    const book: StageResult = await env.run(createUpdateMistakeBookActivity(deps).updateMistakeBook, {
      ...ref, scoresKey: scores.key, previousKey: null, algorithm: config.algorithm,
    });
    assert.equal(book.key, keys.mistakeBook(ref.runId, 0));
    assert.deepEqual(scored.mistakeBook, [{ test: 'assert add_one(10) == 11', frequency: 1 }]);

    // A retried execute finds its finished output instead of running anything again.
    const again = await env.run(createExecuteActivity({ ...deps, sandbox: undefined as never }).execute, {
      ...ref, batchKey: at('batch.json'), codeKey: manifestKey(at('code')), testsKey: manifestKey(at('tests')),
      mistakeBookKey: null, algorithm: config.algorithm, sandbox: config.sandbox,
    });
    assert.deepEqual(again, execution);
  });

  it('fans out: executeShard per block of problems, merged, equals one execute, reading only the generation shards it needs', async () => {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`, { algorithm: { nCode: 2, nTest: 1 } });
    const ref = { runId: config.runId, iteration: 0, storageUri: config.storageUri };
    const at = (name: string) => keys.stage(ref.runId, 0, name);
    const problems: Problem[] = [1, 2, 3, 4, 5].map((k) => ({
      questionId: `p/add-${k}`,
      description: `Return x plus ${k}.`,
      entryPoint: 'add',
      gtCode: `def add(x):\n    return x + ${k}\n`,
      dataSource: 'test',
    }));
    const code = problems.flatMap((p, i) =>
      [0, 1].map((candidateIndex) => ({ ...sample(''), questionId: p.questionId, candidateIndex, code: `def add(x):\n    return x + ${candidateIndex ? i + 1 : 0}\n` })),
    );
    const tests = problems.flatMap((p, i) =>
      [0, 1].map((candidateIndex) => ({
        ...sample(''), questionId: p.questionId, candidateIndex, responseIndex: 0,
        asserts: [`assert add(1) == ${i + 2}`, 'assert add(0) == 99'], nonprintableRatio: 0,
      })),
    );
    const store = openStore(config.storageUri);
    await putJson(store, at('batch.json'), { problems, dataset: {} });
    // Generation wrote three problems per shard and said so in its manifests.
    for (const [name, records] of [['code', code], ['tests', tests]] as const) {
      const shards = [0, 1].map((i) => shardKey(at(name), i));
      await putJson(store, shards[0]!, records.filter((r) => problems.slice(0, 3).some((p) => p.questionId === r.questionId)));
      await putJson(store, shards[1]!, records.filter((r) => problems.slice(3).some((p) => p.questionId === r.questionId)));
      await putJson(store, manifestKey(at(name)), { shards, count: records.length, problemsPerShard: 3 });
    }
    const reads: string[] = [];
    const counting = (uri: string) => {
      const inner = openStore(uri);
      const wrapped = Object.create(inner) as ReturnType<typeof openStore>;
      wrapped.get = (key: string) => (reads.push(key), inner.get(key));
      return wrapped;
    };
    const input = {
      ...ref, batchKey: at('batch.json'), codeKey: manifestKey(at('code')), testsKey: manifestKey(at('tests')),
      mistakeBookKey: null, algorithm: config.algorithm, sandbox: config.sandbox,
    };
    const env = new MockActivityEnvironment();
    const { executeShard } = createExecuteActivity({ openStore: counting, sandbox });
    const shards: StageResult[] = [];
    for (const shard of [0, 1, 2]) {
      reads.length = 0;
      shards.push(await env.run(executeShard, { ...input, shard, problemsPerShard: 2 }));
      // Shard 0 (problems 0-1) needs generation shard 0 only; shard 1 (problems 2-3) both; shard 2 (problem 4) only 1.
      const wanted = [[0], [0, 1], [1]][shard]!;
      assert.deepEqual(
        reads.filter((k) => /\/(code|tests)\/shard-/.test(k)).map((k) => Number(/shard-(\d+)/.exec(k)![1])).sort(),
        [...wanted, ...wanted].sort(),
        `shard ${shard} reads only the generation shards holding its problems`,
      );
    }
    const { mergeExecution } = createMergeExecutionActivity({ openStore: (u) => openStore(u) });
    const merged: StageResult = await env.run(mergeExecution, { ...ref, shards, problems: problems.length });
    const fanned = await readShardedRecords<ProblemExecution>(store, merged.key);
    assert.deepEqual(fanned.map((r) => r.questionId), problems.map((p) => p.questionId));
    // Candidate 1 is right, candidate 0 is not; the first assert is valid, the second is not.
    assert.deepEqual(fanned.map((r) => r.candidates.map((c) => c.responses[0]!.asserts.map((a) => [a.valid, a.passed ?? null]))), problems.map(() => [
      [[true, false], [false, null]],
      [[true, true], [false, null]],
    ]));
    assert.equal(merged.summary.problems, 5);
    assert.equal(merged.summary.validAssertRatio, 0.5);

    // The same stage as one activity, in another run: the same records and the same summary.
    const single = testConfig(`${dir}/single`, { algorithm: { nCode: 2, nTest: 1 } });
    const singleStore = openStore(single.storageUri);
    const sref = { runId: single.runId, iteration: 0, storageUri: single.storageUri };
    const sat = (name: string) => keys.stage(sref.runId, 0, name);
    await putJson(singleStore, sat('batch.json'), { problems, dataset: {} });
    for (const [name, records] of [['code', code], ['tests', tests]] as const) {
      await putJson(singleStore, shardKey(sat(name), 0), records);
      await putJson(singleStore, manifestKey(sat(name)), { shards: [shardKey(sat(name), 0)], count: records.length });
    }
    const one: StageResult = await env.run(createExecuteActivity({ openStore: (u) => openStore(u), sandbox }).execute, {
      ...input, ...sref, batchKey: sat('batch.json'), codeKey: manifestKey(sat('code')), testsKey: manifestKey(sat('tests')),
    });
    assert.deepEqual(await readShardedRecords<ProblemExecution>(singleStore, one.key), fanned);
    assert.deepEqual(merged.summary, one.summary);

    // A retried shard finds its output and runs nothing.
    const again = await env.run(createExecuteActivity({ openStore: (u) => openStore(u), sandbox: undefined as never }).executeShard, { ...input, shard: 1, problemsPerShard: 2 });
    assert.deepEqual(again, shards[1]);
  });
});
