import { isConstant } from './groups.js';
import type { ProblemScore } from './types.js';

/** Numbers that describe one iteration's scoring; they travel in StageResult.summary. */
export interface IterationMetrics {
  problems: number;
  candidates: number;
  responses: number;
  /** Mean rewardA over all candidates. */
  codeRewardMean: number;
  /** Mean rewardB over all (candidate, response) pairs. */
  testRewardMean: number;
  /** Mean of the pairs' `valid` term. */
  validScoreMean: number;
  /** Asserts the oracle accepted and that were not duplicates, over all asserts written. */
  validTestRatio: number;
  /** Over valid candidates: counted generated tests the candidate failed, over counted tests. */
  attackRate: number;
  /** Over valid candidates: replayed Mistake Book tests the candidate failed, over replayed tests. */
  bookAttackRate: number;
  invalidCodeRate: number;
  nonprintableMean: number;
  codeGroupsKept: number;
  testGroupsKept: number;
  /**
   * Groups that carry a learning signal, which dynamic sampling counts: problems whose
   * candidates' code rewards differ, and kept candidates whose test responses' rewards differ.
   * A group with equal rewards has zero advantages: it trains nothing.
   */
  codeGroupsWithVariance: number;
  testGroupsWithVariance: number;
  /** The groups without variance, dropped from training: problems, and kept candidates. */
  codeGroupsDropped: number;
  testGroupsDropped: number;
  /** Tests on the updated pages of this batch's problems. */
  bookTests: number;
  /** This batch's problems that are retired after the update. */
  retiredProblems: number;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

export function iterationMetrics(problems: readonly ProblemScore[]): IterationMetrics {
  let candidates = 0;
  let invalidCode = 0;
  let rewardA = 0;
  let pairs = 0;
  let rewardB = 0;
  let validScore = 0;
  let nonprintable = 0;
  let asserts = 0;
  let acceptedAsserts = 0;
  let countedByValid = 0;
  let failedByValid = 0;
  let replayedByValid = 0;
  let replayFailedByValid = 0;
  let testGroupsKept = 0;
  let testGroupsWithVariance = 0;
  for (const p of problems) {
    testGroupsKept += p.testCandidatesKept.length;
    for (const c of p.testCandidatesKept) if (!isConstant(p.candidates[c]!.responses.map((r) => r.rewardB))) testGroupsWithVariance++;
    for (const c of p.candidates) {
      candidates++;
      rewardA += c.rewardA;
      if (!c.valid) invalidCode++;
      else {
        replayedByValid += p.bookTests;
        replayFailedByValid += p.bookTests - c.bookPassed;
      }
      for (const r of c.responses) {
        pairs++;
        rewardB += r.rewardB;
        validScore += r.valid;
        nonprintable += r.nonprintableRatio;
        asserts += r.asserts;
        acceptedAsserts += r.asserts - r.invalid;
        if (c.valid) {
          countedByValid += r.counted;
          failedByValid += r.failed;
        }
      }
    }
  }
  const codeGroupsWithVariance = problems.filter((p) => !isConstant(p.candidates.map((c) => c.rewardA))).length;
  return {
    problems: problems.length,
    candidates,
    responses: pairs,
    codeRewardMean: ratio(rewardA, candidates),
    testRewardMean: ratio(rewardB, pairs),
    validScoreMean: ratio(validScore, pairs),
    validTestRatio: ratio(acceptedAsserts, asserts),
    attackRate: ratio(failedByValid, countedByValid),
    bookAttackRate: ratio(replayFailedByValid, replayedByValid),
    invalidCodeRate: ratio(invalidCode, candidates),
    nonprintableMean: ratio(nonprintable, pairs),
    codeGroupsKept: problems.filter((p) => p.codeGroupKept).length,
    testGroupsKept,
    codeGroupsWithVariance,
    testGroupsWithVariance,
    codeGroupsDropped: problems.length - codeGroupsWithVariance,
    testGroupsDropped: testGroupsKept - testGroupsWithVariance,
    bookTests: problems.reduce((sum, p) => sum + p.mistakeBook.length, 0),
    retiredProblems: problems.filter((p) => p.retired).length,
  };
}
