import type { CodeRollout } from '../../../activities/records.js';
import type { ProblemExecution, ScoresRecord } from '../../../activities/scoring/index.js';
import { buildScoresRecord, scoreBatch } from '../../../activities/scoring/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { putJson } from '../../../activities/storage/index.js';
import { manifestKey, shardKey } from '../../../activities/storage/manifest.js';
import { algorithmSchema } from '../../../config/run-config.js';
import type { IterationRecord } from '../../../workflows/contract.js';
import { keys } from '../../../workflows/contract.js';

/** An iteration record with the given metrics; keys and checkpoints follow the run's layout. */
export function iterationRecord(runId: string, iteration: number, metrics: Record<string, number>): IterationRecord {
  return {
    runId,
    iteration,
    mistakeBookKey: `runs/${runId}/mistake-book/iter-${iteration}.json`,
    checkpoints: { code: `runs/${runId}/checkpoints/code/iter-${iteration}`, test: `runs/${runId}/checkpoints/test/iter-${iteration}` },
    metrics,
  };
}

/** A metric name that becomes an element (and runs script) wherever it is not escaped. */
export const hostileName = '<img src=x onerror=alert(1)>';

/** A generated assert as the fixture states it: the oracle's verdict and, when it ran, the candidate's outcome. */
export interface FixtureTest {
  test: string;
  valid: boolean;
  passed?: boolean;
}

export interface FixtureProblem {
  questionId: string;
  description: string;
  /** Each candidate: its code (null: no code block), whether it ran, and its test responses. */
  candidates: Array<{ code: string | null; valid: boolean; responses: FixtureTest[][] }>;
}

/**
 * The artifacts an iteration leaves under `runs/<runId>/iter-<n>/` as the stages write them:
 * the batch, code rollout and execution shards with their manifests, and the scores that the
 * scoring core computes from those executions. Returns the scores record.
 */
export async function writeIterationArtifacts(store: ObjectStore, runId: string, iteration: number, problems: FixtureProblem[], problemsPerShard = 2): Promise<ScoresRecord> {
  const key = (name: string) => keys.stage(runId, iteration, name);
  const batch = problems.map((p) => ({ questionId: p.questionId, description: p.description, entryPoint: 'f', gtCode: 'def f(x):\n    return x\n', dataSource: 'builtin' }));
  await putJson(store, key('batch.json'), { problems: batch, dataset: { uri: 'builtin', kept: problems.length } });

  const code: CodeRollout[][] = problems.map((p) =>
    p.candidates.map((c, candidateIndex) => ({
      messages: [{ role: 'user', content: p.description }],
      response: c.code === null ? 'no code here' : `\`\`\`python\n${c.code}\n\`\`\``,
      finishReason: 'stop',
      truncated: false,
      promptTokens: 10,
      completionTokens: 20,
      promptVersion: 'v1',
      checkpoint: 'init/code',
      questionId: p.questionId,
      candidateIndex,
      code: c.code,
    })),
  );
  const executions: ProblemExecution[] = problems.map((p) => ({
    questionId: p.questionId,
    mistakeBook: [],
    candidates: p.candidates.map((c) => ({
      valid: c.valid,
      mistakeBookPassed: [],
      responses: c.responses.map((asserts) => ({
        nonprintableRatio: 0,
        asserts: asserts.map((a) => (a.valid ? { test: a.test, valid: true, passed: c.valid ? (a.passed ?? false) : null } : { test: a.test, valid: false })),
      })),
    })),
  }));
  await writeShards(store, key('code'), code, problemsPerShard);
  await writeShards(store, key('execution'), executions.map((e) => [e]), problemsPerShard);

  const options = algorithmSchema.parse({});
  const scored = scoreBatch(executions, options);
  const scores = buildScoresRecord(runId, iteration, options, scored.problems, scored.metrics);
  await putJson(store, key('scores.json'), scores);
  return scores;
}

/** Shards of `perShard` problems' records each, then the manifest listing them (written last, as the stages do). */
async function writeShards<R>(store: ObjectStore, prefix: string, byProblem: R[][], perShard: number): Promise<void> {
  const shards: string[] = [];
  for (let start = 0; start < byProblem.length; start += perShard) {
    const shard = shardKey(prefix, shards.length);
    await putJson(store, shard, byProblem.slice(start, start + perShard).flat());
    shards.push(shard);
  }
  await putJson(store, manifestKey(prefix), { shards, count: byProblem.length });
}
