import type { Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createRunStateActivities } from '../activities/run-state.js';
import { createSampleBatchActivity } from '../activities/sample-batch.js';
import { createScoreActivity } from '../activities/score.js';
import { createUpdateMistakeBookActivity } from '../activities/update-mistake-book.js';
import { createMergeExecutionActivity } from '../activities/execute.js';
import { createMergeRoundsActivity } from '../activities/merge-rounds.js';
import { createRunControlActivities } from '../activities/add-iterations.js';
import { createWorker, storageDeps, workflowsPath } from './connect.js';

/** Workflows plus the cheap activities that run beside them. */
export function createOrchestrationWorker(env: WorkerEnv): Promise<Worker> {
  const deps = storageDeps(env);
  // The nightly schedule's activity talks to Temporal as a client; connected on its first use.
  let client: Promise<Client> | undefined;
  const temporalClient = () =>
    (client ??= Connection.connect(env.temporal.clientOptions()).then((connection) => new Client({ connection, namespace: env.namespace })));
  return createWorker(env, {
    taskQueue: taskQueues.orchestration,
    workflowsPath,
    activities: {
      ...createRunStateActivities({ ...deps, curves: { localDir: env.tensorboardDir } }),
      ...createSampleBatchActivity(deps),
      ...createScoreActivity(deps),
      ...createUpdateMistakeBookActivity(deps),
      ...createMergeExecutionActivity(deps),
      ...createMergeRoundsActivity(deps),
      ...createRunControlActivities({ client: temporalClient }),
    },
  });
}
