import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createExecuteActivity } from '../activities/execute.js';
import { createRunGoldenTestsActivity } from '../activities/evaluate-golden-tests.js';
import { createRunMutationTestsActivity } from '../activities/evaluate-mutation-tests.js';
import { createSandbox } from '../activities/sandbox/index.js';
import { createWorker, storageDeps } from './connect.js';

/**
 * Runs untrusted code. One fork server per core executes the programs, and one execute activity
 * at a time keeps them all busy (it fans out over problems and candidates itself), so the
 * activity slot count is 1 unless the environment says otherwise. The fork servers live as long
 * as the worker process: bubblewrap's --die-with-parent ends them with it.
 */
export async function createSandboxWorker(env: WorkerEnv): Promise<Worker> {
  const sandbox = await createSandbox();
  return createWorker(
    { ...env, maxActivities: env.maxActivities ?? 1 },
    {
      taskQueue: taskQueues.sandbox,
      activities: {
        ...createExecuteActivity({ ...storageDeps(env), sandbox }),
        ...createRunGoldenTestsActivity({ ...storageDeps(env), sandbox }),
        ...createRunMutationTestsActivity({ ...storageDeps(env), sandbox }),
      },
    },
  );
}
