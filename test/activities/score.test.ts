import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createScoreActivity } from '../../activities/score.js';
import { createUpdateMistakeBookActivity } from '../../activities/update-mistake-book.js';
import { loadBook } from '../../activities/mistake-book/index.js';
import type { ProblemExecution, ScoresRecord } from '../../activities/scoring/index.js';
import { getJson, openStore, putJson } from '../../activities/storage/index.js';
import type { ObjectStore } from '../../activities/storage/index.js';
import { keys, nonRetryableErrors } from '../../workflows/contract.js';
import { algorithm, candidate, entry, fail, fileStore, pass, problem, response, t } from './scoring/fixtures.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
});

const deps = { openStore: (uri: string) => openStore(uri) };
const { score } = createScoreActivity(deps);
const { updateMistakeBook } = createUpdateMistakeBookActivity(deps);
/** Runs an activity in a mock activity context (logger, heartbeats), keeping its types. */
const inActivity = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => new MockActivityEnvironment().run(fn, input) as Promise<O>;

async function run(): Promise<{ store: ObjectStore; ref: { runId: string; iteration: number; storageUri: string } }> {
  const { store, uri, close } = await fileStore();
  closers.push(close);
  return { store, ref: { runId: 'run', iteration: 0, storageUri: uri } };
}

/** Writes an execution manifest with one shard per record list. */
async function writeExecution(store: ObjectStore, iteration: number, ...shards: ProblemExecution[][]): Promise<string> {
  const shardKeys = await Promise.all(
    shards.map(async (records, i) => {
      const key = keys.stage('run', iteration, `execution/shard-${i}.json`);
      await putJson(store, key, records);
      return key;
    }),
  );
  const key = keys.stage('run', iteration, 'execution.json');
  await putJson(store, key, { shards: shardKeys, count: shards.flat().length });
  return key;
}

const twoProblems = [
  problem([candidate([response([fail(t(1)), pass(t(2))])]), candidate([response([pass(t(1))])])], [], 'q1'),
  problem([candidate([response([fail(t(3))])])], [], 'q2'),
];

async function failure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
    return err;
  }
  throw new Error('expected the activity to fail');
}

describe('the score and updateMistakeBook activities', () => {
  it('score a batch from sharded records and save the next Mistake Book, twice with the same result', async () => {
    const { store, ref } = await run();
    const executionKey = await writeExecution(store, 0, [twoProblems[0]!], [twoProblems[1]!]);
    const input = { ...ref, executionKey, mistakeBookKey: null, algorithm: algorithm() };
    const scored = await inActivity(score, input);
    assert.equal(scored.key, keys.stage('run', 0, 'scores.json'));
    assert.equal(scored.summary.problems, 2);
    const record = (await getJson<ScoresRecord>(store, scored.key))!;
    assert.deepEqual(record.code.map((c) => [c.questionId, c.candidateIndex]), [['q1', 0], ['q1', 1]]);
    assert.deepEqual(record.test.map((c) => [c.questionId, c.candidateIndex, c.responseIndex]), [['q1', 0, 0], ['q2', 0, 0]]);

    // A retry after the shards changed still returns what was written: downstream saw that.
    await putJson(store, executionKey, { shards: [], count: 0 });
    assert.deepEqual(await inActivity(score, input), scored);

    const bookInput = { ...ref, scoresKey: scored.key, previousKey: null, algorithm: algorithm() };
    const saved = await inActivity(updateMistakeBook, bookInput);
    const bytes = await store.get(saved.key);
    assert.deepEqual(await inActivity(updateMistakeBook, bookInput), saved);
    assert.deepEqual(await store.get(saved.key), bytes);
    const book = await loadBook(store, 'run', 1);
    assert.deepEqual(book.problems.get('q1')?.tests, [entry(t(1), 1)]);
    assert.deepEqual(book.problems.get('q2')?.tests, [entry(t(3), 1)]);
  });

  it('carry the book into the next iteration and refuse records made against another book', async () => {
    const { store, ref } = await run();
    const first = await inActivity(score, { ...ref, executionKey: await writeExecution(store, 0, twoProblems), mistakeBookKey: null, algorithm: algorithm() });
    await inActivity(updateMistakeBook, { ...ref, scoresKey: first.key, previousKey: null, algorithm: algorithm() });

    const next = { ...ref, iteration: 1, mistakeBookKey: keys.mistakeBook('run', 0), algorithm: algorithm() };
    const stale = problem([candidate([response([])], [])], [], 'q1');
    const rejected = await failure(inActivity(score, { ...next, executionKey: await writeExecution(store, 1, [stale]) }));
    assert.equal(rejected.type, nonRetryableErrors.invalidArtifact);
    assert.equal(rejected.nonRetryable, true);

    const current = problem([candidate([response([])], [true])], [entry(t(1), 1)], 'q1');
    await store.delete(keys.stage('run', 1, 'execution/shard-0.json'));
    const scored = await inActivity(score, { ...next, executionKey: await writeExecution(store, 1, [current]) });
    await inActivity(updateMistakeBook, { ...ref, iteration: 1, scoresKey: scored.key, previousKey: keys.mistakeBook('run', 0), algorithm: algorithm() });
    const book = await loadBook(store, 'run', 2);
    assert.deepEqual(book.problems.get('q1'), { tests: [], cleanStreak: 1, retired: false }, 'q1 lost its only test and had a clean iteration');
    assert.deepEqual(book.problems.get('q2')?.tests, [entry(t(3), 1)], 'problems outside the batch carry over');
  });

  const badInputs = [
    { name: 'a missing previous Mistake Book', type: nonRetryableErrors.missingArtifact, input: (k: string) => ({ iteration: 3, executionKey: k, mistakeBookKey: null }) },
    { name: 'a missing execution manifest', type: nonRetryableErrors.missingArtifact, input: () => ({ executionKey: 'runs/run/iter-0/nothing.json' }) },
    { name: 'an algorithm config out of range', type: nonRetryableErrors.config, input: (k: string) => ({ executionKey: k, algorithm: { ...algorithm(), alpha: 2 } }) },
    { name: 'a previous-book key that is not the previous iteration', type: nonRetryableErrors.config, input: (k: string) => ({ iteration: 2, executionKey: k, mistakeBookKey: keys.mistakeBook('run', 0) }) },
    { name: 'a malformed record', type: nonRetryableErrors.invalidArtifact, shard: [{ questionId: 'q', mistakeBook: [], candidates: 'none' }], input: (k: string) => ({ executionKey: k }) },
  ];
  for (const c of badInputs) {
    it(`fail without retrying on ${c.name}`, async () => {
      const { store, ref } = await run();
      const executionKey = await writeExecution(store, 0, (c.shard ?? twoProblems) as ProblemExecution[]);
      const err = await failure(inActivity(score, { ...ref, mistakeBookKey: null, algorithm: algorithm(), ...c.input(executionKey) }));
      assert.equal(err.type, c.type);
      assert.equal(err.nonRetryable, true);
    });
  }
});
