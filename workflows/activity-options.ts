import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RunConfig } from '../config/run-config.js';
import { retriesSchema } from '../config/run-config.js';
import { nonRetryableErrorTypes, taskQueues } from './contract.js';

type Retries = RunConfig['retries'];
type Timeouts = RunConfig['timeouts'];

/** A run started before retry budgets existed hands its iterations a config without them. */
const defaultRetries: Retries = retriesSchema.parse({});

/**
 * Every activity has a budget of attempts: infrastructure failures (a server down, a worker
 * killed) are retried with backoff until the budget runs out, then the iteration blocks and
 * waits for `code-a1 retry` (workflows/blocked.ts) instead of spinning unseen. Bad input is
 * listed in nonRetryableErrorTypes and blocks at once.
 */
function retry(retries: Retries, maximumAttempts: number): RetryPolicy {
  return {
    initialInterval: `${retries.initialIntervalSeconds} seconds`,
    backoffCoefficient: 2,
    maximumInterval: `${retries.maximumIntervalSeconds} seconds`,
    maximumAttempts,
    nonRetryableErrorTypes,
  };
}

/** Bookkeeping on the orchestration queue: small reads and writes of object storage. */
export function quickOptions(retries: Retries = defaultRetries): ActivityOptions {
  return { taskQueue: taskQueues.orchestration, startToCloseTimeout: '5 minutes', retry: retry(retries, retries.bookkeeping) };
}

/** The bookkeeping preset with the default budget, for workflows that run before a config is parsed. */
export const quick: ActivityOptions = quickOptions();

/**
 * A stage that processes the whole batch. It heartbeats its progress, so a worker that dies is
 * noticed after one heartbeat timeout rather than the whole start-to-close, and the retry
 * resumes from the last heartbeat.
 */
function batchStage(taskQueue: string, minutes: number, timeouts: Timeouts, policy: RetryPolicy): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: `${minutes} minutes`,
    heartbeatTimeout: `${timeouts.heartbeatSeconds} seconds`,
    retry: policy,
  };
}

export function stageOptions(config: Pick<RunConfig, 'timeouts' | 'trainer'> & { retries?: Retries }) {
  const { timeouts, trainer } = config;
  const retries = config.retries ?? defaultRetries;
  return {
    bookkeeping: quickOptions(retries),
    orchestration: batchStage(taskQueues.orchestration, timeouts.executeMinutes, timeouts, retry(retries, retries.bookkeeping)),
    generate: batchStage(taskQueues.llm, timeouts.generateMinutes, timeouts, retry(retries, retries.generate)),
    execute: batchStage(taskQueues.sandbox, timeouts.executeMinutes, timeouts, retry(retries, retries.execute)),
    // An attempt that fails after training costs no second training: its output is stored and
    // marked before the manifest, and a retry on any worker finishes from the marker
    // (activities/update-policy.ts).
    train: batchStage(taskQueues.gpu, timeouts.trainMinutes, timeouts, retry(retries, trainer.maxAttempts)),
    /** Loading weights into a server takes minutes for large models, not hours. */
    publish: batchStage(taskQueues.llm, 30, timeouts, retry(retries, retries.publish)),
  };
}

/** The attempts each activity of an iteration gets, by activity type: what a blocked stage reports. */
export function attemptBudget(config: Pick<RunConfig, 'trainer'> & { retries?: Retries }): (activity: string) => number {
  const retries = config.retries ?? defaultRetries;
  const budgets: Record<string, number> = {
    generateCode: retries.generate,
    generateTests: retries.generate,
    publishPolicy: retries.publish,
    execute: retries.execute,
    executeShard: retries.execute,
    updatePolicy: config.trainer.maxAttempts,
  };
  return (activity) => budgets[activity] ?? retries.bookkeeping;
}
