import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createScoreActivity } from '../../activities/score.js';
import { createMergeRoundsActivity } from '../../activities/merge-rounds.js';
import { createUpdateMistakeBookActivity } from '../../activities/update-mistake-book.js';
import { loadBook } from '../../activities/mistake-book/index.js';
import type { ProblemExecution, ScoresRecord } from '../../activities/scoring/index.js';
import { getJson, openStore, putJson } from '../../activities/storage/index.js';
import type { ObjectStore } from '../../activities/storage/index.js';
import { keys } from '../../workflows/contract.js';
import type { IterationRef, RoundKeys } from '../../workflows/contract.js';
import { algorithm, candidate, fail, fileStore, pass, problem, response, t } from './scoring/fixtures.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
});

const deps = { openStore: (uri: string) => openStore(uri) };
const { score } = createScoreActivity(deps);
const { mergeRounds } = createMergeRoundsActivity(deps);
const { updateMistakeBook } = createUpdateMistakeBookActivity(deps);
const inActivity = <I, O>(fn: (input: I) => Promise<O>, input: I): Promise<O> => new MockActivityEnvironment().run(fn, input) as Promise<O>;

/** One scored round of iteration 0: its execution, scores and (one-shard) rollout manifests, at the round's keys. */
async function scoredRound(store: ObjectStore, ref: IterationRef, round: number, problems: ProblemExecution[]): Promise<RoundKeys> {
  const at = { ...ref, round };
  const shard = keys.roundStage(at, 'execution/shard-0.json');
  await putJson(store, shard, problems);
  const executionKey = keys.roundStage(at, 'execution/manifest.json');
  await putJson(store, executionKey, { shards: [shard], count: problems.length });
  const rollouts = async (role: string) => {
    const key = keys.roundStage(at, `${role}/manifest.json`);
    await putJson(store, key, { shards: [keys.roundStage(at, `${role}/shard-00000.json`)], count: problems.length });
    return key;
  };
  const scores = await inActivity(score, { ...at, executionKey, mistakeBookKey: null, algorithm: algorithm() });
  return { codeKey: await rollouts('code'), testsKey: await rollouts('tests'), scoresKey: scores.key };
}

// q1's two candidates score differently (a group with variance); q2 and q3 have one candidate each.
const round0 = [
  problem([candidate([response([fail(t(1)), pass(t(2))])]), candidate([response([pass(t(1))])])], [], 'q1'),
  problem([candidate([response([fail(t(3))])])], [], 'q2'),
];
const round1 = [problem([candidate([response([fail(t(4))])]), candidate([response([pass(t(4))])])], [], 'q3')];

describe('the mergeRounds activity', () => {
  it('joins the rounds into one batch that the Mistake Book and the trainer read, written once', async () => {
    const { store, uri, close } = await fileStore();
    closers.push(close);
    const ref = { runId: 'run', iteration: 0, storageUri: uri };
    const rounds = [await scoredRound(store, ref, 0, round0), await scoredRound(store, ref, 1, round1)];
    assert.notEqual(rounds[0]!.scoresKey, rounds[1]!.scoresKey, 'each round scores at keys of its own');

    const merged = await inActivity(mergeRounds, { ...ref, rounds });
    const record = await getJson<ScoresRecord>(store, merged.scores.key);
    const parts = await Promise.all(rounds.map(async (r) => (await getJson<ScoresRecord>(store, r.scoresKey))!));
    assert.deepEqual(record?.problems.map((p) => p.questionId), ['q1', 'q2', 'q3']);
    assert.deepEqual(record?.code, parts.flatMap((p) => p.code));
    assert.deepEqual(record?.test, parts.flatMap((p) => p.test));
    assert.equal(merged.scores.summary.rounds, 2);
    assert.equal(merged.scores.summary.problems, 3);
    assert.equal(merged.scores.summary.codeGroupsWithVariance, parts[0]!.summary.codeGroupsWithVariance + parts[1]!.summary.codeGroupsWithVariance);
    assert.equal(merged.scores.summary.codeGroupsDropped, 3 - merged.scores.summary.codeGroupsWithVariance!);
    const manifest = await getJson<{ shards: string[]; count: number }>(store, merged.code.key);
    assert.deepEqual(manifest, { shards: [keys.roundStage(ref, 'code/shard-00000.json'), keys.roundStage({ ...ref, round: 1 }, 'code/shard-00000.json')], count: 3 });

    // A retry returns the same keys and content.
    assert.deepEqual(await inActivity(mergeRounds, { ...ref, rounds }), merged);
    // The Mistake Book update takes the joined scores: every round's problems get their page.
    await inActivity(updateMistakeBook, { ...ref, scoresKey: merged.scores.key, previousKey: null, algorithm: algorithm() });
    const book = await loadBook(store, 'run', 1);
    assert.deepEqual([...book.problems.keys()].sort(), ['q1', 'q2', 'q3']);
  });

  it('refuses rounds that sampled the same problem: it would train and write its page twice', async () => {
    const { store, uri, close } = await fileStore();
    closers.push(close);
    const ref = { runId: 'run', iteration: 0, storageUri: uri };
    const rounds = [await scoredRound(store, ref, 0, round0), await scoredRound(store, ref, 1, round0.slice(1))];
    await assert.rejects(inActivity(mergeRounds, { ...ref, rounds }), (err: Error) => err.name === 'InvalidArtifactError' && /'q2' was sampled in two rounds/.test(err.message));
  });
});
