import type { MistakeBook } from '../mistake-book/index.js';
import { emptyProblemBook } from '../mistake-book/index.js';
import { iterationMetrics } from './metrics.js';
import type { IterationMetrics } from './metrics.js';
import { ScoringInputError, scoreProblem } from './score-problem.js';
import type { ProblemExecution, ProblemScore, ScoringOptions } from './types.js';

export interface BatchScores {
  problems: ProblemScore[];
  metrics: IterationMetrics;
}

/**
 * Scores a batch; `book` supplies each problem's blacklist state (the pages themselves come in
 * the records). Errors name the field from the batch root, e.g. `problems[3].candidates[0]…`.
 */
export function scoreBatch(problems: readonly ProblemExecution[], options: ScoringOptions, book?: MistakeBook): BatchScores {
  const scored = problems.map((problem, i) => {
    try {
      return scoreProblem(problem, options, book?.problems.get(problem.questionId) ?? emptyProblemBook());
    } catch (err) {
      if (err instanceof ScoringInputError) throw new ScoringInputError(`problems[${i}].${err.field}`, err.detail);
      throw err;
    }
  });
  return { problems: scored, metrics: iterationMetrics(scored) };
}
