import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { ScheduleOptions } from '@temporalio/client';
import { taskQueues } from '../workflows/contract.js';
import { codeA1Training, runIdAttribute } from '../workflows/training.js';

export function nightlyScheduleId(runId: string): string {
  return `code-a1-nightly-${runId}`;
}

/**
 * A schedule that continues run `runId` for `moreIterations` iterations per firing. Where the run
 * stands comes from its iteration records in object storage, so each night picks up after the
 * last completed iteration and its checkpoints. SKIP: a night that starts while the previous one
 * still trains is dropped rather than queued behind it.
 */
export function nightlySchedule(opts: { raw: unknown; runId: string; cron: string; moreIterations: number }): ScheduleOptions {
  return {
    scheduleId: nightlyScheduleId(opts.runId),
    spec: { cronExpressions: [opts.cron] },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    action: {
      type: 'startWorkflow',
      workflowType: codeA1Training,
      // Temporal appends the firing time to this ID, so every night is its own workflow.
      workflowId: `${opts.runId}-nightly`,
      taskQueue: taskQueues.orchestration,
      args: [{ config: opts.raw, moreIterations: opts.moreIterations }],
      typedSearchAttributes: [{ key: runIdAttribute, value: opts.runId }],
    },
  };
}
