import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { RunConfig } from '../config/run-config.js';
import { nonRetryableErrorTypes, taskQueues } from './contract.js';

/**
 * Infrastructure failures (a server down, a worker killed) are retried until they heal: a run
 * that waits an hour for S3 to come back is better than a run that dies. Bad input is listed in
 * nonRetryableErrorTypes and fails at once.
 */
const retry: RetryPolicy = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '5 minutes',
  nonRetryableErrorTypes,
};

/** Bookkeeping on the orchestration queue: small reads and writes of object storage. */
export const quick: ActivityOptions = {
  taskQueue: taskQueues.orchestration,
  startToCloseTimeout: '5 minutes',
  retry,
};

type Timeouts = RunConfig['timeouts'];

/**
 * A stage that processes the whole batch. It heartbeats its progress, so a worker that dies is
 * noticed after one heartbeat timeout rather than the whole start-to-close, and the retry
 * resumes from the last heartbeat.
 */
function batchStage(taskQueue: string, minutes: number, timeouts: Timeouts): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: `${minutes} minutes`,
    heartbeatTimeout: `${timeouts.heartbeatSeconds} seconds`,
    retry,
  };
}

export function stageOptions(timeouts: Timeouts, trainer: Pick<RunConfig['trainer'], 'maxAttempts'>) {
  return {
    orchestration: batchStage(taskQueues.orchestration, timeouts.executeMinutes, timeouts),
    generate: batchStage(taskQueues.llm, timeouts.generateMinutes, timeouts),
    execute: batchStage(taskQueues.sandbox, timeouts.executeMinutes, timeouts),
    // Bounded: an update that keeps failing after it trained (a checkpoint that cannot be stored)
    // would otherwise hold the GPUs forever. A retry on the same worker reuses the finished
    // trainer output (activities/update-policy.ts), so an attempt lost to an upload is cheap.
    train: (() => {
      const stage = batchStage(taskQueues.gpu, timeouts.trainMinutes, timeouts);
      return { ...stage, retry: { ...stage.retry, maximumAttempts: trainer.maxAttempts } };
    })(),
    /** Loading weights into a server takes minutes for large models, not hours. */
    publish: { ...batchStage(taskQueues.llm, 30, timeouts) },
  };
}
