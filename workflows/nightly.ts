import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import { ConfigError, parseRunConfig } from '../config/run-config.js';
import type { NightlyInput, RunControlActivities, TrainingProgress } from './contract.js';
import { nonRetryableErrors, taskQueues } from './contract.js';

const control = proxyActivities<RunControlActivities>({
  taskQueue: taskQueues.orchestration,
  startToCloseTimeout: '2 minutes',
  // About eight minutes of retrying a Temporal frontend that does not answer; then this night
  // fails, visibly, in the schedule's recent actions, and the next night tries again.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
});

/**
 * One firing of a run's nightly schedule (infra/schedules.ts): adds `moreIterations` to the run's
 * one training workflow, `<runId>`, starting it when it is not running (Update-with-Start). A
 * night that fires while a manual run trains adds to that run instead of starting a second one.
 */
export async function codeA1Nightly({ config, moreIterations }: NightlyInput): Promise<TrainingProgress> {
  let runId: string;
  try {
    runId = parseRunConfig(config).runId;
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, nonRetryableErrors.config, { issues: err.issues });
    throw err;
  }
  return control.addIterations({ runId, config, moreIterations });
}
