import type { RunConfig } from '../../config/run-config.js';
import type { BookEntry } from '../mistake-book/index.js';

/**
 * The record the execute stage writes, one per problem (shards of `ProblemExecution[]` listed by
 * a `{ shards, count }` manifest), and exactly the per-problem input of `code-a1 score`.
 */
export interface ProblemExecution {
  questionId: string;
  /** The problem's Mistake Book before this iteration, any order; the core applies top-K. */
  mistakeBook: BookEntry[];
  /** In candidate index order. */
  candidates: CandidateExecution[];
}

export interface CandidateExecution {
  /** The code parsed and its module top level ran without error. */
  valid: boolean;
  /**
   * Outcome of the i-th top-K Mistake Book test (book order: frequency descending, then text
   * ascending) against this candidate. For an invalid candidate it may be empty: nothing ran.
   */
  mistakeBookPassed: boolean[];
  /** In response index order. */
  responses: ResponseExecution[];
}

export interface ResponseExecution {
  /** See activities/parsing nonprintableRatio. */
  nonprintableRatio: number;
  /** Every extracted assert, in the order the response wrote them, duplicates included. */
  asserts: AssertExecution[];
}

export interface AssertExecution {
  /** Canonical text (expected value replaced by the reference's result) when valid; the raw text otherwise. */
  test: string;
  /** The oracle's verdict: parses, calls the entry point, the reference returns the claimed value in time. */
  valid: boolean;
  /** Whether the candidate passed it; required when both the assert and the candidate are valid, ignored otherwise. */
  passed?: boolean | null;
}

/** The algorithm settings scoring uses; the run config's `algorithm` section satisfies it. */
export type ScoringOptions = Pick<
  RunConfig['algorithm'],
  'alpha' | 'testsPerResponse' | 'mistakeBookTopK' | 'updateN' | 'mistakeBookCap' | 'dropZeroVarianceGroups' | 'blacklistAfter'
>;

/** Per (candidate, test response). Names follow docs/code-a1.md §6. */
export interface ResponseScore {
  /** clamp(min(|V|/T, 1 - inv/T), 0, 1). */
  valid: number;
  genPass: number;
  genFail: number;
  atkPass: number;
  atkFail: number;
  /** The pair's code reward; rewardA is their mean. */
  codeReward: number;
  rewardB: number;
  advantageB: number;
  /** |V|: unique valid asserts within the first T. */
  counted: number;
  /** inv: invalid asserts, duplicates included. */
  invalid: number;
  /** Counted tests the candidate failed (all of them for an invalid candidate). */
  failed: number;
  /** Asserts the response wrote. */
  asserts: number;
  nonprintableRatio: number;
}

export interface CandidateScore {
  valid: boolean;
  rewardA: number;
  advantageA: number;
  /** Top-K Mistake Book tests the candidate passed (0 for an invalid candidate). */
  bookPassed: number;
  responses: ResponseScore[];
}

export interface ProblemScore {
  questionId: string;
  codeGroupKept: boolean;
  /** Candidate indices whose responses train the Test LLM, ascending. */
  testCandidatesKept: number[];
  /** |M|: Mistake Book tests replayed this iteration. */
  bookTests: number;
  candidates: CandidateScore[];
  /** The page after this iteration's update: sorted, capped. */
  mistakeBook: BookEntry[];
  cleanStreak: number;
  retired: boolean;
}
