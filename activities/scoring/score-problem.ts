import type { BookChanges, ProblemBook } from '../mistake-book/index.js';
import { applyChanges, emptyProblemBook, topK } from '../mistake-book/index.js';
import { groupAdvantages, isConstant, selectByStd } from './groups.js';
import { countAsserts, pairTerms } from './response.js';
import type { CandidateScore, ProblemExecution, ProblemScore, ScoringOptions } from './types.js';

/** Input that contradicts itself; `field` is the path inside the problem, e.g. `candidates[1].mistakeBookPassed`. */
export class ScoringInputError extends Error {
  override name = 'ScoringInputError';
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
  }
}

/** The blacklist state a problem carries between iterations (kept in the stored book). */
export type BookState = Pick<ProblemBook, 'cleanStreak' | 'retired'>;

/**
 * Everything one problem contributes to an iteration: rewards, advantages, group selection and
 * its Mistake Book page after the update. Pure; the same input gives the same output.
 *
 * An invalid candidate (its code does not define) passes no test: every generated test counts
 * as failed and atkPass is 0, so its code reward is 0 whenever any test exists, and 0 otherwise
 * by the formula. That is the reward a program that cannot run deserves, and it keeps a
 * sandbox that reports stale `passed` flags for it from leaking reward. Its test responses
 * still get -nonprintable (the [c valid] factor zeroes the rest), and it changes no frequency.
 */
export function scoreProblem(problem: ProblemExecution, options: ScoringOptions, state: BookState = emptyProblemBook()): ProblemScore {
  const T = options.testsPerResponse;
  const seenBookTests = new Set<string>();
  problem.mistakeBook.forEach((entry, i) => {
    if (seenBookTests.has(entry.test)) throw new ScoringInputError(`mistakeBook[${i}].test`, 'appears twice in the Mistake Book');
    seenBookTests.add(entry.test);
  });
  const before: ProblemBook = { tests: problem.mistakeBook, cleanStreak: state.cleanStreak, retired: state.retired };
  const replayed = topK(problem.mistakeBook, options.mistakeBookTopK);
  const changes: BookChanges = { decrements: [], increments: [], clean: false };
  let validCandidates = 0;
  let allClean = true;

  const candidates: CandidateScore[] = problem.candidates.map((candidate, c) => {
    const outcomes = candidate.mistakeBookPassed;
    const emptyForInvalid = !candidate.valid && outcomes.length === 0;
    if (outcomes.length !== replayed.length && !emptyForInvalid) {
      throw new ScoringInputError(
        `candidates[${c}].mistakeBookPassed`,
        `has ${outcomes.length} outcomes, but the top-${options.mistakeBookTopK} Mistake Book list has ${replayed.length} tests`,
      );
    }
    const bookPassed = candidate.valid ? outcomes.filter(Boolean).length : 0;
    if (candidate.valid) {
      validCandidates++;
      replayed.forEach((entry, i) => outcomes[i] && changes.decrements.push(entry.test));
      if (bookPassed < replayed.length) allClean = false;
    }
    const responses = candidate.responses.map((response, r) => {
      const { counted, invalid } = countAsserts(response.asserts, T, candidate.valid);
      response.asserts.forEach((a, i) => {
        if (candidate.valid && a.valid && typeof a.passed !== 'boolean') {
          throw new ScoringInputError(`candidates[${c}].responses[${r}].asserts[${i}].passed`, 'is required when the assert is valid');
        }
      });
      const passed = counted.filter((t) => t.passed).length;
      if (candidate.valid) {
        for (const t of counted) if (!t.passed) changes.increments.push(t.test);
        if (passed < counted.length) allClean = false;
      }
      const terms = pairTerms({
        counted: counted.length,
        passed,
        invalid,
        bookTests: replayed.length,
        bookPassed,
        candidateValid: candidate.valid,
        nonprintableRatio: response.nonprintableRatio,
        testsPerResponse: T,
        alpha: options.alpha,
      });
      return { ...terms, advantageB: 0, counted: counted.length, invalid, failed: counted.length - passed, asserts: response.asserts.length,
        nonprintableRatio: response.nonprintableRatio };
    });
    const rewardA = responses.length === 0 ? 0 : responses.reduce((sum, r) => sum + r.codeReward, 0) / responses.length;
    return { valid: candidate.valid, rewardA, advantageA: 0, bookPassed, responses };
  });

  // Code LLM group: the problem's candidates. A constant group has no signal (§7).
  const rewardsA = candidates.map((c) => c.rewardA);
  const codeGroupKept = candidates.length > 0 && !(options.dropZeroVarianceGroups && isConstant(rewardsA));
  if (codeGroupKept) groupAdvantages(rewardsA).forEach((a, c) => (candidates[c]!.advantageA = a));

  // Test LLM groups: the responses of one candidate; only the updateN most spread-out train.
  const rewardsB = candidates.map((c) => c.responses.map((r) => r.rewardB));
  const testCandidatesKept = selectByStd(rewardsB, options.updateN);
  for (const c of testCandidatesKept) {
    groupAdvantages(rewardsB[c]!).forEach((a, r) => (candidates[c]!.responses[r]!.advantageB = a));
  }

  changes.clean = validCandidates > 0 && allClean;
  const after = applyChanges(before, changes, options);
  return {
    questionId: problem.questionId,
    codeGroupKept,
    testCandidatesKept,
    bookTests: replayed.length,
    candidates,
    mistakeBook: after.tests,
    cleanStreak: after.cleanStreak,
    retired: after.retired,
  };
}
