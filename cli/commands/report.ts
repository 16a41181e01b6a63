import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { parseCommandLine } from './exec.js';
import { defaultReportPath, readIterationRecords, readRolloutSamples, writeReport } from '../report/index.js';
import { parseRunConfig, runConfigSchema } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { StorageConfigError, openStore } from '../../activities/storage/index.js';
import { InvalidArtifactError } from '../../activities/artifact-errors.js';
import { keys } from '../../workflows/contract.js';

/** The local stack's bucket (infra/stack.ts), which `make run` trains into. */
const defaultStorageUri = 's3://code-a1';

/**
 * Writes a run's iteration metrics and sample rollouts of its last iterations as one
 * self-contained HTML file (charts, samples and a table) and prints its absolute path. Storage
 * comes from --storage, else the run config's storageUri, else the local stack; S3 endpoint and
 * credentials from the environment, as the workers take them.
 */
const report: Command = {
  summary: 'report <runId> [--storage URI] [--config FILE] [--out PATH]: write an HTML report of a run\'s iteration metrics and sample rollouts',
  async run(argv) {
    const { values, positionals } = parseCommandLine(() =>
      parseArgs({
        args: argv,
        options: { storage: { type: 'string' }, config: { type: 'string' }, out: { type: 'string' } },
        strict: true,
        allowPositionals: true,
      }),
    );
    if (positionals.length !== 1) throw new UsageError('expected one run ID');
    // The run ID names the output file, so it must be one a run config accepts (no '/' or '..').
    const runIdCheck = runConfigSchema.shape.runId.safeParse(positionals[0]);
    if (!runIdCheck.success) throw new UsageError(`run ID '${positionals[0]}': ${runIdCheck.error.issues[0]?.message}`);
    const runId = runIdCheck.data;
    const storageUri =
      values.storage ?? (values.config ? (await readConfigFile(values.config, parseRunConfig)).config.storageUri : defaultStorageUri);

    let store;
    try {
      store = openStore(storageUri, parseWorkerEnv(process.env).s3);
    } catch (err) {
      if (err instanceof StorageConfigError) throw new UsageError(err.message);
      throw err;
    }
    let records;
    try {
      records = await readIterationRecords(store, runId);
    } catch (err) {
      if (!(err instanceof InvalidArtifactError)) throw err;
      console.error(`code-a1 report: ${err.message}`);
      return 1;
    }
    if (records.length === 0) throw new UsageError(`run ${runId} has no iteration records under ${store.uri}/${keys.iterationRecords(runId)}`);

    const samples = await readRolloutSamples(store, runId, records.map((r) => r.iteration));
    console.log(await writeReport(values.out ?? defaultReportPath(runId), { runId, storageUri: store.uri, records, samples }));
    return 0;
  },
};
export default report;
