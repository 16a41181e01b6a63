/**
 * Evaluation of the Code LLM against golden tests (HumanEval+ / MBPP+ `check(candidate)` code),
 * the unbiased pass@k estimator, and their time-limit policy. Pure of Temporal.
 */
export { classify, drawExitCodes, goldenProgram, type ExitCodes, type GoldenOutcome } from './golden-program.js';
export { DEFAULT_GOLDEN_MEMORY_MB, GoldenRunner, hasGoldenTests, type GoldenProblem, type GoldenRun, type ReferenceRun } from './golden-runner.js';
export { evaluateSolutions, UnknownProblemError, type Solution, type SolutionResult, type SolutionsReport } from './evaluate-solutions.js';
export { DEFAULT_TIME_LIMITS, timeLimitMs, type TimeLimitPolicy } from './time-limit.js';
export { PAPER_KS, passAtK, scoreBenchmarks, type BenchmarkScore, type ProblemCounts } from './pass-at-k.js';
export { DEFAULT_MUTANT_LIMIT, MutationError, mutantSet, rawMutants, type Mutant, type MutantSet } from './mutants.js';
export { scoreTestResponses, testGenerationScores, type TestResponsesScore } from './test-scores.js';
