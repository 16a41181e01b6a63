import { heartbeat, log } from '@temporalio/activity';
import type { ObjectStore } from './storage/index.js';
import type { StageResult, UpdateMistakeBookInput } from '../workflows/contract.js';
import { updateBook } from './mistake-book/index.js';
import type { ProblemBook } from './mistake-book/index.js';
import { checkPreviousBookKey, nonRetryable, readScoresRecord, scoringOptions } from './scoring/stage-input.js';

export interface UpdateMistakeBookDeps {
  openStore(uri: string): ObjectStore;
}

/**
 * Stage `updateMistakeBook`: the previous version with this batch's pages replaced by the ones
 * the score stage computed, saved write-once as `runs/<runId>/mistake-book/iter-<n>.json` (an
 * index of shards; only the shards of this batch's problems are read and rewritten).
 * A retry recomputes from the same immutable inputs and finds identical bytes already stored,
 * so an update is never applied twice; different bytes fail the activity instead of
 * overwriting a version later stages may have read.
 */
export function createUpdateMistakeBookActivity(deps: UpdateMistakeBookDeps) {
  return {
    async updateMistakeBook(input: UpdateMistakeBookInput): Promise<StageResult> {
      const { runId, iteration } = input;
      try {
        scoringOptions(input.algorithm);
        checkPreviousBookKey(runId, iteration, input.previousKey, 'previousKey');
        const store = deps.openStore(input.storageUri);
        const scores = await readScoresRecord(store, input.scoresKey, runId, iteration);
        heartbeat({ scoredProblems: scores.problems.length });
        const pages = new Map<string, ProblemBook | null>();
        for (const p of scores.problems) {
          // A page with nothing in it and no blacklist history is the same as no page.
          const empty = p.mistakeBook.length === 0 && p.cleanStreak === 0 && !p.retired;
          pages.set(p.questionId, empty ? null : { tests: p.mistakeBook, cleanStreak: p.cleanStreak, retired: p.retired });
        }
        const { key, created, size } = await updateBook(store, runId, iteration, pages);
        log.info(created ? 'saved Mistake Book' : 'Mistake Book already saved', { runId, iteration, key, ...size });
        return { key, summary: { bookProblems: size.problems, bookTests: size.tests, retiredProblems: size.retired } };
      } catch (err) {
        throw nonRetryable(err);
      }
    },
  };
}
