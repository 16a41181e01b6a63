import { heartbeat, log } from '@temporalio/activity';
import type { Manifest } from './records.js';
import type { ObjectStore } from './storage/index.js';
import { getJson, putJsonOnce } from './storage/index.js';
import { keys } from '../workflows/contract.js';
import type { ScoreInput, StageResult } from '../workflows/contract.js';
import { InvalidArtifactError, MissingArtifactError, loadProblems, sortEntries } from './mistake-book/index.js';
import type { MistakeBook } from './mistake-book/index.js';
import { ScoringInputError, buildScoresRecord, describeIssues, problemListSchema, scoreBatch } from './scoring/index.js';
import type { ProblemExecution, ScoresRecord } from './scoring/index.js';
import { checkPreviousBookKey, nonRetryable, scoringOptions } from './scoring/stage-input.js';

export interface ScoreDeps {
  openStore(uri: string): ObjectStore;
}

async function readExecution(store: ObjectStore, executionKey: string): Promise<ProblemExecution[]> {
  const manifest = await getJson<Manifest>(store, executionKey);
  if (manifest === undefined) throw new MissingArtifactError(`execution manifest ${store.uri}/${executionKey} is missing`);
  if (!Array.isArray(manifest.shards) || !manifest.shards.every((s) => typeof s === 'string') || !Number.isInteger(manifest.count)) {
    throw new InvalidArtifactError(`${store.uri}/${executionKey}: expected { shards: string[], count: integer }`);
  }
  const problems: ProblemExecution[] = [];
  for (const [i, shard] of manifest.shards.entries()) {
    const records = await getJson(store, shard);
    if (records === undefined) throw new MissingArtifactError(`execution shard ${store.uri}/${shard} is missing`);
    const parsed = problemListSchema.safeParse(records);
    if (!parsed.success) throw new InvalidArtifactError(`${store.uri}/${shard}: ${describeIssues(parsed.error).join('; ')}`);
    problems.push(...parsed.data);
    heartbeat({ shardsRead: i + 1 });
  }
  if (problems.length !== manifest.count) {
    throw new InvalidArtifactError(`${store.uri}/${executionKey}: count is ${manifest.count}, but its shards hold ${problems.length} records`);
  }
  const ids = new Set(problems.map((p) => p.questionId));
  if (ids.size !== problems.length) throw new InvalidArtifactError(`${store.uri}/${executionKey}: a questionId appears in more than one record`);
  return problems;
}

/**
 * `mistakeBookPassed` indexes the top-K list of the book the execute stage replayed; scoring
 * against any other book would credit outcomes to the wrong tests.
 */
function checkSameBook(problems: readonly ProblemExecution[], book: MistakeBook, where: string): void {
  for (const p of problems) {
    const stored = book.problems.get(p.questionId)?.tests ?? [];
    const recorded = sortEntries(p.mistakeBook);
    const same = stored.length === recorded.length && stored.every((e, i) => e.test === recorded[i]!.test && e.frequency === recorded[i]!.frequency);
    if (!same) throw new InvalidArtifactError(`${where}: the record of '${p.questionId}' carries a Mistake Book that differs from the stored previous version`);
  }
}

/**
 * Stage `score`: execution outcomes to rewards, advantages and each problem's updated Mistake
 * Book page, written once at `runs/<runId>/iter-<n>/scores.json`. A retry finds that object
 * and returns it: everything downstream has to see the same scores.
 */
export function createScoreActivity(deps: ScoreDeps) {
  return {
    async score(input: ScoreInput): Promise<StageResult> {
      const { runId, iteration } = input;
      const key = keys.roundStage(input, 'scores.json');
      try {
        const store = deps.openStore(input.storageUri);
        const done = await getJson<ScoresRecord>(store, key);
        if (done !== undefined) {
          log.info('scores already written', { runId, iteration, key });
          return { key, summary: { ...done.summary } };
        }
        const options = scoringOptions(input.algorithm);
        checkPreviousBookKey(runId, iteration, input.mistakeBookKey, 'mistakeBookKey');
        const problems = await readExecution(store, input.executionKey);
        const book = await loadProblems(store, runId, iteration, problems.map((p) => p.questionId));
        checkSameBook(problems, book, `${store.uri}/${input.executionKey}`);
        let scored;
        try {
          scored = scoreBatch(problems, options, book);
        } catch (err) {
          if (err instanceof ScoringInputError) throw new InvalidArtifactError(`${store.uri}/${input.executionKey}: ${err.message}`, { cause: err });
          throw err;
        }
        const record = await putJsonOnce(store, key, buildScoresRecord(runId, iteration, options, scored.problems, scored.metrics));
        log.info('scored iteration', { runId, iteration, key, ...record.summary });
        return { key, summary: { ...record.summary } };
      } catch (err) {
        throw nonRetryable(err);
      }
    },
  };
}
