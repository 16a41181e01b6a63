import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { defineSearchAttributeKey } from '@temporalio/common';
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, parseRunConfig } from '../config/run-config.js';
import type { IterationRecord, OrchestrationActivities, TrainingInput, TrainingProgress } from './contract.js';
import { nonRetryableErrors, taskQueues } from './contract.js';
import { quick } from './activity-options.js';
import { codeA1Iteration, iterationWorkflowId } from './iteration.js';

export const progressQuery = defineQuery<TrainingProgress>('progress');
/** Hold before the next iteration starts; the running one finishes. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Finish the current iteration, then end the run (it can be continued later with the same run ID). */
export const stopSignal = defineSignal('stop');

function validate(raw: unknown): RunConfig {
  try {
    return parseRunConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, nonRetryableErrors.config, { issues: err.issues });
    throw err;
  }
}

/**
 * A training run: iterations as child workflows `<runId>/iter-<n>`, one after the other. Where
 * the run stands is read from object storage at start, so starting the workflow again with the
 * same run ID continues after the last completed iteration, on any machine.
 */
export async function codeA1Training(input: TrainingInput): Promise<TrainingProgress> {
  const config = validate(input.config);
  const bookkeeping = proxyActivities<OrchestrationActivities>(quick);

  const progress: TrainingProgress = {
    runId: config.runId,
    targetIterations: config.iterations,
    completedIterations: 0,
    currentIteration: null,
    paused: input.paused ?? false,
    stopping: false,
    last: null,
  };
  setHandler(progressQuery, () => progress);
  setHandler(pauseSignal, () => void (progress.paused = true));
  setHandler(resumeSignal, () => void (progress.paused = false));
  setHandler(stopSignal, () => void (progress.stopping = true));

  const state = await bookkeeping.loadRunState({ runId: config.runId, storageUri: config.storageUri });
  progress.completedIterations = state.completed;
  progress.last = state.last;
  // A scheduled night asks for N more iterations from wherever the run stands; the target is
  // fixed once, here, and carried across continue-as-new so that it does not keep moving.
  progress.targetIterations =
    input.target ?? (input.moreIterations === undefined ? config.iterations : state.completed + input.moreIterations);

  let startedHere = 0;
  while (progress.completedIterations < progress.targetIterations) {
    await condition(() => !progress.paused || progress.stopping);
    if (progress.stopping) break;
    if (startedHere >= config.continueAsNewEvery || workflowInfo().continueAsNewSuggested) {
      // Keeps the history bounded on long runs; the state is re-read from storage.
      return continueAsNew<typeof codeA1Training>({ config: input.config, paused: progress.paused, target: progress.targetIterations });
    }
    const iteration = progress.completedIterations;
    progress.currentIteration = iteration;
    const record: IterationRecord = await executeChild(codeA1Iteration, {
      workflowId: iterationWorkflowId(config.runId, iteration),
      taskQueue: taskQueues.orchestration,
      args: [{ config, iteration, previous: progress.last }],
      typedSearchAttributes: searchAttributes(config.runId, iteration),
    });
    progress.last = record;
    progress.completedIterations = iteration + 1;
    progress.currentIteration = null;
    startedHere++;
  }
  return progress;
}

/** Registered on the dev server by infra/temporal-server.ts; other clusters need them created once. */
export const runIdAttribute = defineSearchAttributeKey('CodeA1RunId', 'KEYWORD');
export const iterationAttribute = defineSearchAttributeKey('CodeA1Iteration', 'INT');

function searchAttributes(runId: string, iteration: number) {
  return [
    { key: runIdAttribute, value: runId },
    { key: iterationAttribute, value: iteration },
  ];
}
