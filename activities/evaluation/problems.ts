import type { Problem } from '../records.js';
import type { EvaluationConfig } from './config.js';
import { DatasetError, loadProblems } from '../dataset/index.js';
import type { ObjectStore } from '../storage/index.js';
import { hasGoldenTests, type GoldenProblem } from './golden-runner.js';

/** A sampled solution as the evaluation stores it: the response and the code taken from it. */
export interface EvaluationSample {
  questionId: string;
  dataSource: string;
  sampleIndex: number;
  response: string;
  finishReason: string;
  completionTokens: number;
  /** The extracted program; null when the response held none (it counts as a failed sample). */
  code: string | null;
}

/**
 * The problems an evaluation covers: the dataset's rows with golden tests, in dataset order, the
 * first `maxProblems` of them. Both stages call this, so they agree on the set without passing it
 * through workflow history.
 */
export async function evaluationProblems(config: EvaluationConfig, openStore: (uri: string) => ObjectStore): Promise<GoldenProblem[]> {
  const { problems } = await loadProblems(config.dataset.uri, { openStore, ...(config.dataset.sources ? { sources: config.dataset.sources } : {}) });
  const tested = problems.filter(hasGoldenTests);
  if (tested.length === 0) throw new DatasetError(`dataset ${config.dataset.uri} has no rows with golden tests (a test column): nothing to evaluate`);
  return tested.slice(0, config.dataset.maxProblems ?? tested.length);
}

/**
 * A sampled solution as it runs: the import lines of the problem's code header (HumanEval+'s
 * `from typing import List`), then the extracted code. EvalPlus's chat prompts make the model
 * repeat the header, imports included; our prompt shows the task without asking for that, so a
 * solution annotated `List[float]` would otherwise fail on a NameError that says nothing about
 * its logic. Only a header that is code (it declares the entry point) contributes imports.
 */
export function solutionProgram(problem: Problem, code: string): string {
  const header = problem.prompt;
  if (!header || !new RegExp(`^def ${problem.entryPoint}\\s*\\(`, 'm').test(header)) return code;
  const imports = header.split('\n').filter((line) => /^(import|from)\s+[A-Za-z_]/.test(line));
  return imports.length === 0 ? code : `${imports.join('\n')}\n${code}`;
}
