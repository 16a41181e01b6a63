import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import type { BlockedStage, Stage } from './contract.js';

/**
 * Whether a stage's failure blocks the iteration: the failures of the activities and child
 * workflows it ran, after their own retries. Anything else is a bug in workflow code, which
 * Temporal retries as a workflow task failure.
 */
export function blocksStage(err: unknown): err is ActivityFailure | ChildWorkflowFailure {
  return err instanceof ActivityFailure || err instanceof ChildWorkflowFailure;
}

/**
 * What the user sees of a blocked stage: which activity, how many attempts, and the error that
 * ended them, as the activity raised it (its type and message, not a wrapper's).
 */
export function describeBlocked(
  iteration: number,
  stage: Stage,
  err: ActivityFailure | ChildWorkflowFailure,
  budgetOf: (activity: string) => number,
  now: Date,
): BlockedStage {
  const activity = err instanceof ActivityFailure ? err.activityType : `child workflow ${err.execution.workflowId}`;
  let root: Error = err;
  while (root.cause instanceof Error && (root instanceof ActivityFailure || root instanceof ChildWorkflowFailure)) root = root.cause;
  const errorType = root instanceof ApplicationFailure ? (root.type ?? 'Error') : root instanceof TimeoutFailure ? `Timeout(${root.timeoutType})` : root.name;
  let reason: BlockedStage['reason'] = 'failed';
  if (err.retryState === 'MAXIMUM_ATTEMPTS_REACHED') reason = 'budget';
  else if (err.retryState === 'NON_RETRYABLE_FAILURE' || (root instanceof ApplicationFailure && root.nonRetryable)) reason = 'non-retryable';
  else if (err.retryState === 'TIMEOUT') reason = 'timeout';
  return {
    iteration,
    stage,
    activity: activity ?? 'unknown',
    attempts: reason === 'budget' && err instanceof ActivityFailure ? budgetOf(err.activityType ?? '') : null,
    reason,
    errorType,
    error: root.message,
    since: now.toISOString(),
  };
}

/** One line for `report`, the CLI and the workflow's current details. */
export function blockedLine(b: BlockedStage): string {
  const tries = b.attempts === null ? '' : ` after ${b.attempts} attempt${b.attempts === 1 ? '' : 's'}`;
  const why = b.reason === 'non-retryable' ? ' (not retried: no retry can fix this error)' : b.reason === 'timeout' ? ' (timed out)' : '';
  return `blocked since ${b.since} in iteration ${b.iteration}, stage ${b.stage} (${b.activity})${tries}${why}: ${b.errorType}: ${b.error}`;
}
