import type { ObjectStore } from '../../activities/storage/index.js';
import type { BlockedStage, IterationRecord } from '../../workflows/contract.js';
import { blockedLine } from '../../workflows/blocked.js';
import { keys } from '../../workflows/contract.js';

/** Where a run stands, as far as its storage (and its config, when given) tells. */
export interface RunStatus {
  /** The last iteration with a record; records are consecutive, so iterations 0..last are done. */
  lastCompleted: number | null;
  /** Iterations the run's config plans (`iterations`); unknown without the config. */
  planned?: number;
  /** The iteration after the last record, when it has started: its batch is stored. */
  started?: number;
  /** A stage waiting for `code-a1 retry`, as the run's workflow reports it (storage cannot tell). */
  blocked?: BlockedStage & { runId: string };
}

export type RunState = 'running' | 'blocked' | 'complete' | 'waiting' | 'unknown';

/**
 * Reads whether the iteration after the last record has begun. sampleBatch is an iteration's
 * first stage and writes `batch.json` before anything else, so its presence means the iteration
 * is under way (or was cut short: storage cannot tell a running iteration from a dead one).
 */
export async function readRunStatus(store: ObjectStore, runId: string, records: readonly IterationRecord[], planned?: number): Promise<RunStatus> {
  const lastCompleted = records.length === 0 ? null : Math.max(...records.map((r) => r.iteration));
  const next = lastCompleted === null ? 0 : lastCompleted + 1;
  const started = (await store.exists(keys.stage(runId, next, 'batch.json'))) ? next : undefined;
  return { lastCompleted, ...(planned === undefined ? {} : { planned }), ...(started === undefined ? {} : { started }) };
}

/** One sentence for the top of the report, and the state it names. */
export function describeStatus({ lastCompleted, planned, started, blocked }: RunStatus): { state: RunState; text: string } {
  const done = lastCompleted === null ? 0 : lastCompleted + 1;
  const of = planned === undefined ? `${done} iteration${done === 1 ? '' : 's'}` : `${done} of ${planned} planned iterations`;
  if (blocked) {
    return { state: 'blocked', text: `Blocked: ${of} complete; ${blockedLine(blocked)}. After fixing the cause: npx code-a1 retry ${blocked.runId}` };
  }
  if (started !== undefined) {
    return {
      state: 'running',
      text: `In progress: ${of} complete; iteration ${started} has started (or was cut short). This report shows the completed iterations; run it again for newer ones.`,
    };
  }
  if (planned !== undefined && done >= planned) return { state: 'complete', text: `Complete: ${of}.` };
  if (planned !== undefined) {
    return { state: 'waiting', text: `Not finished: ${of} complete; iteration ${done} has not started (paused, stopped, or about to start).` };
  }
  return { state: 'unknown', text: `${of} complete; no later iteration has started. Give the run's config (--config) to compare with the planned count.` };
}
