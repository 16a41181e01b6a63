import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { Command } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { UsageError } from '../command.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { codeA1Training, progressQuery, runIdAttribute } from '../../workflows/training.js';
import { iterationProgressQuery, iterationWorkflowId } from '../../workflows/iteration.js';
import type { IterationProgress } from '../../workflows/iteration.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import type { IterationRecord, TrainingProgress } from '../../workflows/contract.js';
import { getJson, openStore } from '../../activities/storage/index.js';
import { progressLine, summaryTable } from '../progress.js';
import { defaultReportPath, writeReport } from '../report/index.js';

/**
 * Starts a training run (or attaches to it when it is already running; a finished or terminated
 * run with the same ID continues after its last completed iteration), shows its progress and ends
 * with a table of the iteration metrics and an HTML report of them (`code-a1 report`).
 */
const run: Command = {
  summary: 'run --config FILE [--detach]: start or continue a training run and follow it',
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, detach: { type: 'boolean', default: false } } });
    if (!values.config) throw new UsageError('--config FILE is required');
    const { raw, config } = await readConfigFile(values.config, parseRunConfig);
    const env = parseWorkerEnv(process.env);
    const connection = await Connection.connect({ address: env.temporalAddress });
    try {
      const client = new Client({ connection, namespace: env.namespace });
      const handle = await client.workflow.start(codeA1Training, {
        taskQueue: taskQueues.orchestration,
        workflowId: config.runId,
        args: [{ config: raw }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: [{ key: runIdAttribute, value: config.runId }],
      });
      console.log(`run ${config.runId}: workflow ${handle.workflowId} on ${env.temporalAddress} (namespace ${env.namespace})`);
      if (values.detach) return 0;

      const tty = Boolean(process.stdout.isTTY);
      let last = '';
      const result = handle.result();
      let done = false;
      void result.then(
        () => (done = true),
        () => (done = true),
      );
      while (!done) {
        // Queries race with workflow completion and continue-as-new: a miss just skips one refresh.
        const progress: TrainingProgress | undefined = await handle.query(progressQuery).catch(() => undefined);
        let iteration: IterationProgress | undefined;
        if (progress && progress.currentIteration !== null) {
          iteration = await client.workflow
            .getHandle(iterationWorkflowId(config.runId, progress.currentIteration))
            .query(iterationProgressQuery)
            .catch(() => undefined);
        }
        if (progress) {
          const line = progressLine(progress, iteration, tty);
          if (tty) process.stdout.write(`\r\x1b[2K${line}`);
          else if (line !== last) console.log(line);
          last = line;
        }
        await Promise.race([sleep(1_000), result.catch(() => undefined)]);
      }
      if (tty) process.stdout.write('\n');
      const final = await result;
      const store = openStore(config.storageUri, env.s3);
      const records: IterationRecord[] = [];
      for (let i = 0; i < final.completedIterations; i++) {
        const record = await getJson<IterationRecord>(store, keys.iterationRecord(config.runId, i));
        if (record) records.push(record);
      }
      console.log(`\n${summaryTable(records)}\n`);
      if (records.length > 0) {
        // The run itself is done and stored; a report that cannot be written is no reason to fail it.
        const report = await writeReport(defaultReportPath(config.runId), { runId: config.runId, storageUri: store.uri, records }).catch(
          (err: Error) => `not written (${err.message})`,
        );
        console.log(`report: ${report}`);
      }
      console.log(`artifacts: ${store.uri}/${keys.run(config.runId)}/`);
      return 0;
    } finally {
      await connection.close();
    }
  },
};
export default run;
