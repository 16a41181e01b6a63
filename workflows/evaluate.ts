import { ApplicationFailure, proxyActivities, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';
import { ConfigError } from '../config/run-config.js';
import type { EvaluationConfig } from '../activities/evaluation/config.js';
import { parseEvaluationConfig } from '../activities/evaluation/config.js';
import type { BenchmarkScore } from '../activities/evaluation/pass-at-k.js';
import type { StageResult } from './contract.js';
import { nonRetryableErrors, nonRetryableErrorTypes, taskQueues } from './contract.js';

/** Artifact keys of an evaluation, relative to its storage URI. */
export const evaluationKeys = {
  samples: (evalId: string) => `evals/${evalId}/samples`,
  golden: (evalId: string) => `evals/${evalId}/golden`,
  report: (evalId: string) => `evals/${evalId}/report.json`,
  testResponses: (evalId: string) => `evals/${evalId}/test-responses`,
  mutants: (evalId: string) => `evals/${evalId}/mutants`,
  mutation: (evalId: string) => `evals/${evalId}/mutation`,
  testReport: (evalId: string) => `evals/${evalId}/test-report.json`,
};

export interface EvaluateInput {
  /** Raw config: validated inside the workflow, so that directly started evaluations fail clearly. */
  config: unknown;
}

export interface SampleSolutionsInput {
  config: EvaluationConfig;
}

export interface RunGoldenTestsInput {
  config: EvaluationConfig;
  samplesKey: string;
}

export interface SampleTestResponsesInput {
  config: EvaluationConfig;
  /** The Code LLM's samples: white-box prompts show each problem's first one with code. */
  samplesKey: string;
}

export interface RunMutationTestsInput {
  config: EvaluationConfig;
  responsesKey: string;
}

/** Test LLM figures in percent, as the paper reports them; Mul = pass@k x mut@k / 100. */
export interface TestGenerationScores {
  problems: number;
  passAtK: number;
  mutAtK: number;
  mul: number;
}

export interface TestGenerationReport {
  /** `test-report.json`; per-problem scores are in the `mutation/` shards, mutants in `mutants/`. */
  reportKey: string;
  /** k: responses per problem. */
  responsesPerProblem: number;
  overall: TestGenerationScores;
  benchmarks: (TestGenerationScores & { dataSource: string })[];
}

export interface EvaluationReport {
  evalId: string;
  /** Per-problem results (`report.json`): counts per problem and every sample's outcome by shard. */
  reportKey: string;
  samplesKey: string;
  benchmarks: BenchmarkScore[];
  /** References that did not pass their own golden tests (their problems still count). */
  failedReferences: string[];
  /** Present when the config has a `tests` section. */
  testGeneration?: TestGenerationReport;
}

/** Activities by task queue; implementations in activities/evaluate-*.ts. */
export interface EvaluationLlmActivities {
  sampleSolutions(input: SampleSolutionsInput): Promise<StageResult>;
  sampleTestResponses(input: SampleTestResponsesInput): Promise<StageResult>;
}

export interface EvaluationSandboxActivities {
  runGoldenTests(input: RunGoldenTestsInput): Promise<EvaluationReport>;
  runMutationTests(input: RunMutationTestsInput): Promise<TestGenerationReport>;
}

/**
 * Infrastructure failures retry with backoff (about four minutes of retrying), then the evaluation
 * fails with the cause; bad input fails at once. Started again with the same ID (`code-a1 eval`
 * again, or `code-a1 retry` for one inside a training run) it resumes from what it stored.
 */
const retry: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 8, nonRetryableErrorTypes };

function stage(taskQueue: string, minutes: number, heartbeatSeconds: number): ActivityOptions {
  return { taskQueue, startToCloseTimeout: `${minutes} minutes`, heartbeatTimeout: `${heartbeatSeconds} seconds`, retry };
}

/**
 * A Code LLM evaluation (docs/code-a1.md, Evaluation): n samples per problem from the model
 * endpoint, each run against the problem's golden tests, scored as avg@n and unbiased pass@k per
 * benchmark. With a `tests` section, then the Test LLM's: k responses per problem (black- or white-box),
 * scored as validity pass@k, mut@k against mutants of the reference, and Mul. Both stages store their output at keys derived from the evaluation ID and resume
 * from what they stored, so the workflow can be started again with the same ID after a failure.
 */
export async function codeA1Evaluate(input: EvaluateInput): Promise<EvaluationReport> {
  let config: EvaluationConfig;
  try {
    config = parseEvaluationConfig(input.config);
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, nonRetryableErrors.config, { issues: err.issues });
    throw err;
  }
  const { timeouts } = config;
  const llm = proxyActivities<EvaluationLlmActivities>(stage(taskQueues.llm, timeouts.sampleMinutes, timeouts.heartbeatSeconds));
  const sandbox = proxyActivities<EvaluationSandboxActivities>(stage(taskQueues.sandbox, timeouts.executeMinutes, timeouts.heartbeatSeconds));

  const samples = await llm.sampleSolutions({ config });
  const report = await sandbox.runGoldenTests({ config, samplesKey: samples.key });
  if (!config.tests) return report;
  const responses = await llm.sampleTestResponses({ config, samplesKey: report.samplesKey });
  return { ...report, testGeneration: await sandbox.runMutationTests({ config, responsesKey: responses.key }) };
}

export function evaluationWorkflowId(evalId: string): string {
  return `eval/${evalId}`;
}
