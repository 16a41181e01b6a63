import type { AssertExecution } from './types.js';

/** What of one test response counts (docs/code-a1.md §4-5). */
export interface CountedAsserts {
  /** V: the first T unique valid tests, in order, with the candidate's outcome. */
  counted: { test: string; passed: boolean }[];
  /** inv: invalid asserts, including later copies of a valid test's canonical text. */
  invalid: number;
}

/**
 * Dedup and the first-T cap. A valid assert whose canonical text an earlier valid assert of the
 * same response already had is a duplicate, hence invalid; unique valid asserts beyond the T-th
 * are neither counted nor invalid (the prompt says only the first ones count, and writing more
 * correct tests is no fault). `candidateRuns` false means the candidate never got defined, so no
 * test can pass whatever the record says.
 */
export function countAsserts(asserts: readonly AssertExecution[], testsPerResponse: number, candidateRuns: boolean): CountedAsserts {
  const seen = new Set<string>();
  const counted: CountedAsserts['counted'] = [];
  let invalid = 0;
  for (const a of asserts) {
    if (!a.valid || seen.has(a.test)) {
      invalid++;
      continue;
    }
    seen.add(a.test);
    if (counted.length < testsPerResponse) counted.push({ test: a.test, passed: candidateRuns && a.passed === true });
  }
  return { counted, invalid };
}

export interface PairInput {
  counted: number;
  passed: number;
  invalid: number;
  /** |M| and how many of them the candidate passed. */
  bookTests: number;
  bookPassed: number;
  candidateValid: boolean;
  nonprintableRatio: number;
  testsPerResponse: number;
  alpha: number;
}

export interface PairTerms {
  valid: number;
  genPass: number;
  genFail: number;
  atkPass: number;
  atkFail: number;
  codeReward: number;
  rewardB: number;
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/**
 * The formulas of docs/code-a1.md §6 for one (candidate, test response) pair. With M empty,
 * atkPass and atkFail are reported as 0: no Mistake Book test ran, and neither term enters a
 * reward then.
 */
export function pairTerms(p: PairInput): PairTerms {
  const T = p.testsPerResponse;
  const hasV = p.counted > 0;
  const hasM = p.bookTests > 0;
  // 1. Test validity.
  const valid = clamp01(Math.min(p.counted / T, 1 - p.invalid / T));
  // 2. Generated tests against the candidate.
  const genFail = (p.counted - p.passed) / T;
  const genPass = hasV ? p.passed / p.counted : 0;
  // 3. Mistake Book tests against the candidate.
  const atkPass = hasM ? p.bookPassed / p.bookTests : 0;
  const atkFail = hasM ? 1 - atkPass : 0;
  // 4. Code reward of the pair.
  const codeReward = hasM && hasV ? (atkPass + genPass) / 2 : hasM ? atkPass : hasV ? genPass : 0;
  // 5. Test reward: attack credit is halved by what the Mistake Book already caught.
  const attack = hasM && hasV ? (genFail - atkFail + 1) / 2 : hasV ? genFail : 0;
  const rewardB = -p.nonprintableRatio + (p.candidateValid ? p.alpha * valid + (1 - p.alpha) * attack : 0);
  return { valid, genPass, genFail, atkPass, atkFail, codeReward, rewardB };
}
