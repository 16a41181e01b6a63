import { heartbeat, log } from '@temporalio/activity';
import type { SampleBatchInput, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { Problem } from './records.js';
import type { DatasetReport } from './dataset/index.js';
import { loadProblems, roundIndices, sampleBatch } from './dataset/index.js';
import type { StorageDeps } from './deps.js';
import { putJsonOnce } from './storage/index.js';

/** The stored batch of an iteration: the problems themselves, so later stages never reload the dataset. */
export interface BatchRecord {
  problems: Problem[];
  dataset: DatasetReport;
}

/**
 * Step 1: the iteration's problems, a pure function of (dataset, seed, iteration), or those of an
 * extra sampling round (input.round): problems the iteration has not sampled yet, possibly none.
 */
export function createSampleBatchActivity({ openStore }: StorageDeps) {
  async function sampleBatchActivity(input: SampleBatchInput): Promise<StageResult> {
    const key = keys.roundStage(input, 'batch.json');
    const store = openStore(input.storageUri);
    const summarize = (batch: BatchRecord): StageResult => ({
      key,
      summary: { problems: batch.problems.length, datasetRows: batch.dataset.kept },
    });
    const existing = await store.get(key);
    if (existing) return summarize(JSON.parse(Buffer.from(existing).toString('utf8')) as BatchRecord);

    heartbeat('loading dataset');
    const { problems, report } = await loadProblems(input.dataset.uri, {
      openStore,
      ...(input.dataset.sources ? { sources: input.dataset.sources } : {}),
    });
    const position = { seed: input.seed, iteration: input.iteration, batchSize: input.batchSize };
    const batch = input.round ? roundIndices(problems.length, position, input.round).map((i) => problems[i]!) : sampleBatch(problems, position);
    log.info('batch sampled', { runId: input.runId, iteration: input.iteration, round: input.round ?? 0, problems: batch.length, datasetRows: report.kept });
    return summarize(await putJsonOnce<BatchRecord>(store, key, { problems: batch, dataset: report }));
  }
  return { sampleBatch: sampleBatchActivity };
}
