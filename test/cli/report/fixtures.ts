import type { IterationRecord } from '../../../workflows/contract.js';

/** An iteration record with the given metrics; keys and checkpoints follow the run's layout. */
export function iterationRecord(runId: string, iteration: number, metrics: Record<string, number>): IterationRecord {
  return {
    runId,
    iteration,
    mistakeBookKey: `runs/${runId}/mistake-book/iter-${iteration}.json`,
    checkpoints: { code: `runs/${runId}/checkpoints/code/iter-${iteration}`, test: `runs/${runId}/checkpoints/test/iter-${iteration}` },
    metrics,
  };
}

/** A metric name that becomes an element (and runs script) wherever it is not escaped. */
export const hostileName = '<img src=x onerror=alert(1)>';
