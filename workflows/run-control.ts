import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { StageReport, TrainingProgress } from './contract.js';

/**
 * The messages that drive a run. A run has one workflow, `<runId>`; the CLI, the nightly
 * schedule and its iterations talk to it through these. Updates answer with the run's progress
 * once the change is in effect, and their validators reject what makes no sense (retrying a run
 * that is not blocked) before anything is written to history.
 */
export const progressQuery = defineQuery<TrainingProgress>('progress');

/** Hold before the next iteration starts; the running one finishes. */
export const pauseUpdate = defineUpdate<TrainingProgress>('pause');
export const resumeUpdate = defineUpdate<TrainingProgress>('resume');
/** Finish the current iteration, then end the run (it can be continued later with the same run ID). */
export const stopUpdate = defineUpdate<TrainingProgress>('stop');
/** Raise the run's target by N iterations (the nightly schedule, `code-a1 add-iterations`). */
export const addIterationsUpdate = defineUpdate<TrainingProgress, [number]>('addIterations');
/** Run the blocked stage again, once its cause is fixed. */
export const retryUpdate = defineUpdate<TrainingProgress>('retry');

/** The signals of runs started before the Updates existed; still handled, so their clients keep working. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const stopSignal = defineSignal('stop');

/** Iteration -> run: the stage it entered, and whether it is blocked there. */
export const stageReportSignal = defineSignal<[StageReport]>('stageReport');
/** Run -> iteration: run the blocked stage again. */
export const retryStageSignal = defineSignal('retryStage');
