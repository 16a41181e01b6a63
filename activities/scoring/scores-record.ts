import type { IterationMetrics } from './metrics.js';
import type { ProblemScore, ScoringOptions } from './types.js';

export const SCORES_SCHEMA_VERSION = 1;

/** One Code LLM rollout the policy update trains on, with its advantage. */
export interface CodeAdvantage {
  questionId: string;
  candidateIndex: number;
  rewardA: number;
  advantageA: number;
}

/** One Test LLM rollout the policy update trains on, with its advantage. */
export interface TestAdvantage {
  questionId: string;
  candidateIndex: number;
  responseIndex: number;
  rewardB: number;
  advantageB: number;
}

/**
 * The score stage's output (`runs/<runId>/iter-<n>/scores.json`). The trainer reads `code` and
 * `test`: exactly the rollouts to train on, keyed like the rollout records; rollouts absent from
 * them (dropped or unselected groups) are not trained on. updateMistakeBook reads `problems`.
 */
export interface ScoresRecord {
  schemaVersion: typeof SCORES_SCHEMA_VERSION;
  runId: string;
  iteration: number;
  options: ScoringOptions;
  summary: IterationMetrics;
  code: CodeAdvantage[];
  test: TestAdvantage[];
  problems: ProblemScore[];
}

export function buildScoresRecord(runId: string, iteration: number, options: ScoringOptions, problems: ProblemScore[], summary: IterationMetrics): ScoresRecord {
  const code: CodeAdvantage[] = [];
  const test: TestAdvantage[] = [];
  for (const p of problems) {
    if (p.codeGroupKept) {
      p.candidates.forEach((c, candidateIndex) =>
        code.push({ questionId: p.questionId, candidateIndex, rewardA: c.rewardA, advantageA: c.advantageA }),
      );
    }
    for (const candidateIndex of p.testCandidatesKept) {
      p.candidates[candidateIndex]!.responses.forEach((r, responseIndex) =>
        test.push({ questionId: p.questionId, candidateIndex, responseIndex, rewardB: r.rewardB, advantageB: r.advantageB }),
      );
    }
  }
  return { schemaVersion: SCORES_SCHEMA_VERSION, runId, iteration, options, summary, code, test, problems };
}
