import type { MetricMeter } from '@temporalio/common';
import type { GenerateCodeInput, PolicyCheckpoint, StageResult, UpdatePolicyInput } from '../workflows/contract.js';

/**
 * The project's own metrics, read from what the stages already return (their summaries and
 * trainer metrics), so that no stage measures anything twice. Recorded on the activity's metric
 * meter: they go out on the worker's Prometheus endpoint with the SDK's metrics, tagged with the
 * namespace, task queue and activity type, plus the run ID.
 *
 * Counters count only work done by the attempt that returns: a stage that finds its finished
 * output returns it without a throughput figure, and its counts were recorded by the attempt
 * that did the work (except execute, whose summary does not tell the two apart).
 */
export function recordStageMetrics(meter: MetricMeter, activityType: string, input: unknown, result: unknown, seconds: number): void {
  const recorder = recorders[activityType];
  if (!recorder || !isObject(input) || !isObject(result)) return;
  const runId = typeof input.runId === 'string' ? input.runId : 'unknown';
  recorder(meter.withTags({ run_id: runId }), input, result, seconds);
}

type Recorder = (meter: MetricMeter, input: Record<string, unknown>, result: Record<string, unknown>, seconds: number) => void;

/** The sandbox's checks: candidates against the reference tests, asserts against the reference solution, tests against candidates. */
const sandbox: Recorder = (meter, _input, result, seconds) => {
  const s = (result as unknown as StageResult).summary ?? {};
  const n = (name: string) => (typeof s[name] === 'number' ? s[name] : 0);
  const executions = meter.createCounter('code_a1_sandbox_executions', '1', 'Programs run in the sandbox, by check and outcome');
  const outcomes: [string, string, number][] = [
    ['candidate', 'valid', n('validCandidates')],
    ['candidate', 'invalid', n('candidates') - n('validCandidates')],
    ['assert', 'valid', n('validAsserts')],
    ['assert', 'invalid', n('asserts') - n('validAsserts')],
    ['test', 'passed', n('testsPassed')],
    ['test', 'failed', n('testsRun') - n('testsPassed')],
  ];
  for (const [check, outcome, count] of outcomes) executions.add(Math.max(0, count), { check, outcome });
  const total = n('candidates') + n('asserts') + n('testsRun');
  if (total > 0 && seconds > 0) {
    meter.createGauge('code_a1_sandbox_executions_per_second', 'float', '1/s', 'Sandbox executions per second of the last execute activity').set(total / seconds);
  }
};

const generation = (role: 'code' | 'test'): Recorder => (meter, input, result) => {
  const s = (result as unknown as StageResult).summary ?? {};
  const { tokensPerSecond, generationSeconds } = s;
  // Absent when this attempt generated nothing (the stage was already done).
  if (typeof tokensPerSecond !== 'number' || typeof generationSeconds !== 'number') return;
  const endpoint = (input as unknown as GenerateCodeInput).model?.baseUrl ?? 'unknown';
  const tags = { role, endpoint };
  meter.createGauge('code_a1_generation_tokens_per_second', 'float', '1/s', 'Completion tokens per second of the last generation stage, per endpoint').set(tokensPerSecond, tags);
  meter.createCounter('code_a1_generation_tokens', '1', 'Completion tokens generated').add(Math.round(tokensPerSecond * generationSeconds), tags);
};

const training: Recorder = (meter, input, result) => {
  const { metrics } = result as unknown as Partial<PolicyCheckpoint>;
  // Only an update that ran the trainer now has a throughput; an alias or a reused output does not.
  if (!metrics || metrics.trained !== 1 || metrics.reusedTrainerOutput === 1 || typeof metrics.tokens_per_s !== 'number') return;
  const role = (input as unknown as UpdatePolicyInput).role;
  meter.createGauge('code_a1_trainer_tokens_per_second', 'float', '1/s', 'Trainer tokens per second (log-probs and updates) of the last policy update').set(metrics.tokens_per_s, { role });
};

const mistakeBook: Recorder = (meter, _input, result) => {
  const s = (result as unknown as StageResult).summary ?? {};
  if (typeof s.bookTests === 'number') meter.createGauge('code_a1_mistake_book_tests', 'int', '1', 'Tests in the Mistake Book after the last update').set(s.bookTests);
  if (typeof s.bookProblems === 'number') meter.createGauge('code_a1_mistake_book_problems', 'int', '1', 'Problems with a Mistake Book page after the last update').set(s.bookProblems);
};

const recorders: Record<string, Recorder> = {
  execute: sandbox,
  executeShard: sandbox,
  generateCode: generation('code'),
  generateTests: generation('test'),
  updatePolicy: training,
  updateMistakeBook: mistakeBook,
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
