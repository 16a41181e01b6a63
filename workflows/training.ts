import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, parseRunConfig } from '../config/run-config.js';
import type { BlockedStage, IterationRecord, OrchestrationActivities, RunState, TrainingInput, TrainingProgress } from './contract.js';
import { nonRetryableErrors, taskQueues } from './contract.js';
import { attemptBudget, quickOptions } from './activity-options.js';
import { blockedLine, blocksStage, describeBlocked } from './blocked.js';
import { assertBlocked, codeA1Iteration, iterationWorkflowId } from './iteration.js';
import {
  addIterationsUpdate,
  pauseSignal,
  pauseUpdate,
  progressQuery,
  resumeSignal,
  resumeUpdate,
  retryStageSignal,
  retryUpdate,
  stageReportSignal,
  stopSignal,
  stopUpdate,
} from './run-control.js';
import { blockedAttribute, iterationAttribute, runIdAttribute, stageAttribute } from './search-attributes.js';

// Clients and tests import the messages and attributes from here, beside the workflow they drive.
export { progressQuery, pauseSignal, resumeSignal, stopSignal } from './run-control.js';
export { runIdAttribute, iterationAttribute } from './search-attributes.js';

function validate(raw: unknown): RunConfig {
  try {
    return parseRunConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) throw ApplicationFailure.nonRetryable(err.message, nonRetryableErrors.config, { issues: err.issues });
    throw err;
  }
}


/**
 * A training run: iterations as child workflows `<runId>/iter-<n>`, one after the other. This
 * workflow, with ID `<runId>`, is the only one that drives the run: the CLI pauses, resumes,
 * stops and retries it through Updates, and the nightly schedule adds iterations to it
 * (workflows/nightly.ts). Where the run stands is read from object storage at start and after a
 * pause, so starting the workflow again with the same run ID continues after the last completed
 * iteration, on any machine.
 */
export async function codeA1Training(input: TrainingInput): Promise<TrainingProgress> {
  const config = validate(input.config);
  const bookkeeping = proxyActivities<OrchestrationActivities>(quickOptions(config.retries));

  const progress: TrainingProgress = {
    runId: config.runId,
    targetIterations: config.iterations,
    completedIterations: 0,
    currentIteration: null,
    stage: null,
    blocked: null,
    paused: input.paused ?? false,
    stopping: false,
    last: null,
  };
  /** 1 while the run waits for `code-a1 retry`, 0 otherwise; one series per run (created in workflow context). */
  const blockedGauge = metricMeter.createGauge('code_a1_run_blocked', 'int', '', 'Whether a Code-A1 run waits for `code-a1 retry`');
  let loaded = false;
  /** Whether the blocked stage is this workflow's own (the iteration failed as a whole), not its iteration's. */
  let blockedHere = false;
  let retryRequested = false;

  /** The search attributes, the gauge and the details follow the stage and the blocked state. */
  function showState(): void {
    const blocked = progress.blocked ?? null;
    upsertSearchAttributes([
      { key: stageAttribute, value: blocked?.stage ?? progress.stage ?? 'between-iterations' },
      { key: blockedAttribute, value: blocked !== null },
    ]);
    blockedGauge.set(blocked ? 1 : 0, { run_id: config.runId });
    setCurrentDetails(blocked ? `${blockedLine(blocked)}\n\nRetry once the cause is fixed: npx code-a1 retry ${config.runId}` : '');
  }

  setHandler(progressQuery, () => progress);
  setHandler(pauseSignal, () => void (progress.paused = true));
  setHandler(resumeSignal, () => void (progress.paused = false));
  setHandler(stopSignal, () => void (progress.stopping = true));
  setHandler(pauseUpdate, () => ((progress.paused = true), progress));
  setHandler(resumeUpdate, () => ((progress.paused = false), progress));
  setHandler(stopUpdate, () => ((progress.stopping = true), progress));
  setHandler(
    addIterationsUpdate,
    async (more) => {
      // The target is relative to where the run stands, known once the run state is read.
      await condition(() => loaded);
      progress.targetIterations += more;
      return progress;
    },
    {
      validator: (more) => {
        if (!Number.isInteger(more) || more < 1) throw new Error(`iterations to add must be a positive integer, got ${more}`);
      },
    },
  );
  setHandler(
    retryUpdate,
    async () => {
      if (blockedHere) retryRequested = true;
      else await getExternalWorkflowHandle(iterationWorkflowId(config.runId, progress.blocked!.iteration)).signal(retryStageSignal);
      progress.blocked = null;
      showState();
      return progress;
    },
    { validator: () => assertBlocked(progress.blocked ?? null, `run ${config.runId}`) },
  );
  setHandler(stageReportSignal, (report) => {
    if (report.iteration !== progress.currentIteration) return;
    progress.stage = report.stage;
    progress.blocked = report.blocked;
    showState();
  });

  /**
   * Blocks the run itself: its iteration failed as a whole (or the run state could not be read)
   * after its retries. Waits for `retry` (or `stop`); true when retried.
   */
  async function blockHere(blocked: BlockedStage): Promise<boolean> {
    progress.blocked = blocked;
    blockedHere = true;
    retryRequested = false;
    log.error('run blocked: waiting for a retry', { ...blocked });
    showState();
    await condition(() => retryRequested || progress.stopping);
    blockedHere = false;
    if (progress.blocked) {
      progress.blocked = null;
      showState();
    }
    return retryRequested;
  }

  async function readRunState(): Promise<RunState> {
    for (;;) {
      try {
        return await bookkeeping.loadRunState({ runId: config.runId, storageUri: config.storageUri });
      } catch (err) {
        if (!blocksStage(err) || !patched('run-blocking')) throw err;
        if (!(await blockHere(describeBlocked(progress.completedIterations, 'sampleBatch', err, attemptBudget(config), new Date())))) {
          return { completed: progress.completedIterations, last: progress.last };
        }
      }
    }
  }

  const state = await readRunState();
  progress.completedIterations = state.completed;
  progress.last = state.last;
  // A scheduled night asks for N more iterations from wherever the run stands; the target is
  // fixed once, here, and carried across continue-as-new so that it does not keep moving.
  progress.targetIterations =
    input.target ?? (input.moreIterations === undefined ? config.iterations : state.completed + input.moreIterations);
  loaded = true;

  let startedHere = 0;
  for (;;) {
    while (progress.completedIterations < progress.targetIterations && !progress.stopping) {
      if (progress.paused) {
        await condition(() => !progress.paused || progress.stopping);
        if (progress.stopping) break;
        // Another run of this ID may have moved it on while this one held (runs recorded before
        // one workflow per run could); storage says where it stands.
        if (patched('reread-after-pause')) {
          const now = await readRunState();
          progress.completedIterations = now.completed;
          progress.last = now.last;
          continue;
        }
      }
      if (startedHere >= config.continueAsNewEvery || workflowInfo().continueAsNewSuggested) {
        // Keeps the history bounded on long runs; the state is re-read from storage.
        await condition(allHandlersFinished);
        return continueAsNew<typeof codeA1Training>({ config: input.config, paused: progress.paused, target: progress.targetIterations });
      }
      const iteration = progress.completedIterations;
      progress.currentIteration = iteration;
      const record = await runIteration(iteration);
      progress.currentIteration = null;
      progress.stage = null;
      if (record === 'stopped') break;
      if (record === 'elsewhere') {
        // The iteration completed in another workflow of this run ID (one recorded before one
        // workflow per run): take the run state from storage rather than run it again.
        const now = await readRunState();
        if (now.completed <= iteration) {
          const running = new ApplicationFailure(`iteration ${iteration} is run by another workflow of run ${config.runId}`, 'DuplicateRunError');
          if (!(await blockHere(blockedBy(iteration, running)))) break;
          continue;
        }
        progress.completedIterations = now.completed;
        progress.last = now.last;
        continue;
      }
      progress.last = record;
      progress.completedIterations = iteration + 1;
      startedHere++;
    }
    // Updates that arrived as the last iteration ended (a nightly's addIterations) may raise the
    // target: the run ends only when none is in flight and the target is reached.
    await condition(allHandlersFinished);
    if (progress.stopping || progress.completedIterations >= progress.targetIterations) break;
  }
  return progress;

  /** One iteration as a child workflow; a failure of the child as a whole blocks the run until `retry`. */
  async function runIteration(iteration: number): Promise<IterationRecord | 'stopped' | 'elsewhere'> {
    for (;;) {
      try {
        return await executeChild(codeA1Iteration, {
          workflowId: iterationWorkflowId(config.runId, iteration),
          taskQueue: taskQueues.orchestration,
          args: [{ config, iteration, previous: progress.last }],
          typedSearchAttributes: searchAttributes(config.runId, iteration),
          // A completed iteration never runs again; a failed or terminated one may.
          workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
        });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError && patched('one-workflow-per-run')) return 'elsewhere';
        if (!blocksStage(err) || !patched('run-blocking')) throw err;
        const blocked = describeBlocked(iteration, progress.stage ?? 'sampleBatch', err, attemptBudget(config), new Date());
        if (!(await blockHere(blocked))) return 'stopped';
      }
    }
  }

  /** A block that no activity raised: the workflow found the run in a state it must not continue from. */
  function blockedBy(iteration: number, err: ApplicationFailure): BlockedStage {
    return {
      iteration,
      stage: 'sampleBatch',
      activity: 'codeA1Iteration',
      attempts: null,
      reason: 'failed',
      errorType: err.type ?? 'Error',
      error: err.message,
      since: new Date().toISOString(),
    };
  }
}

function searchAttributes(runId: string, iteration: number) {
  return [
    { key: runIdAttribute, value: runId },
    { key: iterationAttribute, value: iteration },
  ];
}
