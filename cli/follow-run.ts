import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { WorkerEnv } from '../config/worker-env.js';
import type { RunConfig } from '../config/run-config.js';
import { codeA1Training, progressQuery, runIdAttribute } from '../workflows/training.js';
import { iterationProgressQuery, iterationWorkflowId } from '../workflows/iteration.js';
import type { IterationProgress } from '../workflows/iteration.js';
import { keys, taskQueues } from '../workflows/contract.js';
import type { IterationRecord, TrainingInput, TrainingProgress } from '../workflows/contract.js';
import { getJson, openStore } from '../activities/storage/index.js';
import { progressLine, summaryTable } from './progress.js';
import { ExitError } from './command.js';
import { describeProgress } from './run-workflow.js';
import { defaultReportPath, readRolloutSamples, writeReport } from './report/index.js';

/**
 * Starts the run's training workflow with the run ID as workflow ID, or attaches to it when it is
 * running. A finished or terminated run with that ID starts again and continues after its last
 * completed iteration (the workflow reads where the run stands from object storage).
 */
export async function startOrAttach(client: Client, runId: string, input: TrainingInput): Promise<WorkflowHandle<typeof codeA1Training>> {
  return client.workflow.start(codeA1Training, {
    taskQueue: taskQueues.orchestration,
    workflowId: runId,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [{ key: runIdAttribute, value: runId }],
  });
}

/**
 * Follows a run to its end: a progress line (redrawn in place on a terminal), then a table of
 * the iteration metrics, the HTML report (`code-a1 report`) and where the artifacts are. A run
 * that blocks ends the command with exit status 3, the cause and the command that retries it.
 */
export async function followRun(client: Client, handle: WorkflowHandle<typeof codeA1Training>, config: RunConfig, env: WorkerEnv): Promise<void> {
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
    if (progress?.blocked) {
      // The run waits, durably, for a retry: following it further would only hang the terminal.
      if (tty) process.stdout.write('\n');
      throw new ExitError(`${describeProgress(progress)}\nthen follow it again: npx code-a1 resume ${config.runId}`, 3);
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
    const report = await readRolloutSamples(store, config.runId, records.map((r) => r.iteration))
      .then((samples) => writeReport(defaultReportPath(config.runId), { runId: config.runId, storageUri: store.uri, records, samples }))
      .catch((err: Error) => `not written (${err.message})`);
    console.log(`report: ${report}`);
  }
  console.log(`artifacts: ${store.uri}/${keys.run(config.runId)}/`);
}
