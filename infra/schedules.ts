import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { ScheduleOptions } from '@temporalio/client';
import { taskQueues } from '../workflows/contract.js';
import { codeA1Nightly } from '../workflows/nightly.js';
import { runIdAttribute } from '../workflows/search-attributes.js';

export function nightlyScheduleId(runId: string): string {
  return `code-a1-nightly-${runId}`;
}

/**
 * A schedule that adds `moreIterations` iterations to run `runId` per firing. Each firing is a
 * short workflow (codeA1Nightly) that hands the iterations to the run's one training workflow,
 * `<runId>`, starting it if it is not running: a night never starts a second workflow beside a
 * manual run. Where the run stands comes from its iteration records in object storage, so each
 * night picks up after the last completed iteration and its checkpoints. SKIP: a firing while the
 * previous firing's workflow still runs (for seconds) is dropped.
 */
export function nightlySchedule(opts: { raw: unknown; runId: string; cron: string; moreIterations: number }): ScheduleOptions {
  return {
    scheduleId: nightlyScheduleId(opts.runId),
    spec: { cronExpressions: [opts.cron] },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    action: {
      type: 'startWorkflow',
      workflowType: codeA1Nightly,
      // Temporal appends the firing time to this ID, so every night is its own (short) workflow.
      workflowId: `${opts.runId}-nightly`,
      taskQueue: taskQueues.orchestration,
      args: [{ config: opts.raw, moreIterations: opts.moreIterations }],
      typedSearchAttributes: [{ key: runIdAttribute, value: opts.runId }],
    },
  };
}
