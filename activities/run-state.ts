import { log } from '@temporalio/activity';
import type { IterationRecord, LoadRunStateInput, RecordIterationInput, RunState } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { StorageDeps } from './deps.js';
import { MissingArtifactError } from './artifact-errors.js';
import { getJson, putJsonOnce } from './storage/index.js';
import type { CurveOptions } from './curves/index.js';
import { createCurveWriter } from './curves/index.js';

/**
 * Where a run stands lives in object storage, not in Temporal: one record per completed
 * iteration, written once, last. A run continues from its records on any cluster.
 */
export function createRunStateActivities({ openStore, curves }: StorageDeps & { curves?: CurveOptions }) {
  const writeCurves = createCurveWriter(openStore, curves);

  async function loadRunState({ runId, storageUri }: LoadRunStateInput): Promise<RunState> {
    const store = openStore(storageUri);
    const records = await store.list(keys.iterationRecords(runId));
    // Records are consecutive by construction; a gap would mean a damaged run, so count only
    // the unbroken prefix and let the next iteration redo what follows it.
    let completed = 0;
    while (records[completed] === keys.iterationRecord(runId, completed)) completed++;
    if (completed < records.length) log.warn('iteration records after a gap are ignored', { runId, completed, records: records.length });
    if (completed === 0) return { completed, last: null };
    const last = await getJson<IterationRecord>(store, keys.iterationRecord(runId, completed - 1));
    if (!last) throw new MissingArtifactError(`iteration record ${completed - 1} of run ${runId} vanished while reading`);
    return { completed, last };
  }

  async function recordIteration(input: RecordIterationInput): Promise<IterationRecord> {
    const { runId, iteration, stageResults, policies, stageDurationsMs } = input;
    const book = stageResults.updateMistakeBook;
    if (!book) throw new MissingArtifactError(`iteration ${iteration} of run ${runId} has no Mistake Book result`);
    const checkpoint = (role: 'code' | 'test') => {
      const found = policies.find((p) => p.role === role);
      if (!found) throw new MissingArtifactError(`iteration ${iteration} of run ${runId} has no ${role} policy update`);
      return found.checkpoint;
    };
    const metrics: Record<string, number> = {};
    for (const [stage, result] of Object.entries(stageResults)) {
      for (const [name, value] of Object.entries(result?.summary ?? {})) metrics[`${stage}.${name}`] = value;
    }
    for (const policy of policies) {
      for (const [name, value] of Object.entries(policy.metrics)) metrics[`train.${policy.role}.${name}`] = value;
    }
    for (const [stage, ms] of Object.entries(stageDurationsMs)) metrics[`duration.${stage}Ms`] = ms ?? 0;
    const record: IterationRecord = {
      runId,
      iteration,
      mistakeBookKey: book.key,
      checkpoints: { code: checkpoint('code'), test: checkpoint('test') },
      metrics,
    };
    // First writer wins: a retry after a crash returns the record the run already committed to.
    const committed = await putJsonOnce(openStore(input.storageUri), keys.iterationRecord(runId, iteration), record);
    // Curves of the committed record, so a retry rewrites the same points; they never fail the iteration.
    await writeCurves(input.storageUri, committed);
    return committed;
  }

  return { loadRunState, recordIteration };
}
