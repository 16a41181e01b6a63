import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openRunStore } from '../run-store.js';
import { defaultReportPath, readIterationRecords, readRolloutSamples, readRunStatus, writeReport } from '../report/index.js';
import { describeStatus } from '../report/status.js';
import { queryRunProgress } from '../run-workflow.js';
import { InvalidArtifactError } from '../../activities/artifact-errors.js';
import { keys } from '../../workflows/contract.js';

/**
 * Writes a run's iteration metrics and sample rollouts of its last iterations as one
 * self-contained HTML file (charts, samples and a table) and prints its absolute path. Works
 * during a run as after it: it shows the iterations recorded so far and says whether the next
 * one has started (and, given the run's config, how many are planned), and, when the run's
 * workflow answers, whether a stage is blocked.
 */
const report: Command = {
  summary: 'report <runId> [--storage URI] [--config FILE] [--out PATH]: write an HTML report of a run\'s iteration metrics and sample rollouts, during or after the run',
  async run(argv) {
    const { runId, store, config, values } = await openRunStore(argv, { out: { type: 'string' } });
    let records;
    try {
      records = await readIterationRecords(store, runId);
    } catch (err) {
      if (!(err instanceof InvalidArtifactError)) throw err;
      console.error(`code-a1 report: ${err.message}`);
      return 1;
    }
    const status = await readRunStatus(store, runId, records, config?.iterations);
    const blocked = (await queryRunProgress(runId))?.blocked;
    if (blocked) {
      status.blocked = { ...blocked, runId };
      console.error(describeStatus(status).text);
    }
    if (records.length === 0) {
      const started = status.started === undefined ? '' : ' yet (iteration 0 has started)';
      throw new UsageError(`run ${runId} has no iteration records${started} under ${store.uri}/${keys.iterationRecords(runId)}`);
    }

    const samples = await readRolloutSamples(store, runId, records.map((r) => r.iteration));
    console.log(await writeReport(values.out ?? defaultReportPath(runId), { runId, storageUri: store.uri, records, samples, status }));
    return 0;
  },
};
export default report;
