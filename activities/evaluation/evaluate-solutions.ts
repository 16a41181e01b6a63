import type { Problem } from '../records.js';
import type { Sandbox } from '../sandbox/index.js';
import type { GoldenOutcome } from './golden-program.js';
import { GoldenRunner, hasGoldenTests, type GoldenProblem, type GoldenRun, type ReferenceRun } from './golden-runner.js';
import type { TimeLimitPolicy } from './time-limit.js';

export interface Solution {
  questionId: string;
  code: string;
}

export interface SolutionResult {
  questionId: string;
  passed: boolean;
  outcome: GoldenOutcome;
}

export interface SolutionsReport {
  /** One per solution, in input order. */
  results: (SolutionResult & Omit<GoldenRun, 'outcome'>)[];
  passRate: number;
  /** References of the problems evaluated that did not pass their own golden tests. */
  failedReferences: ReferenceRun[];
}

/** A solution names a problem that the dataset lacks, or one without golden tests: bad input. */
export class UnknownProblemError extends Error {
  override name = 'UnknownProblemError';
}

/**
 * Runs every solution against its problem's golden tests, as many at a time as the sandbox has
 * fork servers. Problems are resolved before anything runs, so bad input fails fast.
 */
export async function evaluateSolutions(
  sandbox: Sandbox,
  problems: readonly Problem[],
  solutions: readonly Solution[],
  options: { timeLimits?: TimeLimitPolicy; memoryMb?: number } = {},
): Promise<SolutionsReport> {
  const byId = new Map(problems.map((problem) => [problem.questionId, problem]));
  const resolved: GoldenProblem[] = [];
  const unknown = new Set<string>();
  const untested = new Set<string>();
  for (const { questionId } of solutions) {
    const problem = byId.get(questionId);
    if (!problem) unknown.add(questionId);
    else if (!hasGoldenTests(problem)) untested.add(questionId);
    else resolved.push(problem);
  }
  if (unknown.size > 0 || untested.size > 0) {
    const parts = [
      ...(unknown.size > 0 ? [`unknown question ids: ${listIds(unknown)}`] : []),
      ...(untested.size > 0 ? [`question ids without golden tests: ${listIds(untested)}`] : []),
    ];
    throw new UnknownProblemError(parts.join('; '));
  }

  const runner = new GoldenRunner(sandbox, options.timeLimits, options.memoryMb);
  const results: SolutionsReport['results'] = new Array(solutions.length);
  let next = 0;
  // Workers pull the next solution in input order, so each problem's reference is measured once,
  // by the first solution that needs it, and the others of that problem wait for it.
  const worker = async () => {
    for (let i = next++; i < solutions.length; i = next++) {
      const problem = resolved[i]!;
      const run = await runner.run(problem, solutions[i]!.code);
      results[i] = { questionId: problem.questionId, passed: run.outcome === 'pass', ...run };
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(sandbox.concurrency, solutions.length)) }, worker));

  const passed = results.filter((r) => r.passed).length;
  const references = await runner.measuredReferences();
  return {
    results,
    passRate: solutions.length === 0 ? 0 : passed / solutions.length,
    failedReferences: references.filter((r) => r.outcome !== 'pass'),
  };
}

function listIds(ids: Set<string>): string {
  const shown = [...ids].slice(0, 10).map((id) => JSON.stringify(id));
  return ids.size > shown.length ? `${shown.join(', ')} and ${ids.size - shown.length} more` : shown.join(', ');
}
