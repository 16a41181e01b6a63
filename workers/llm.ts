import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createGenerateCodeActivity } from '../activities/generate-code.js';
import { createGenerateTestsActivity } from '../activities/generate-tests.js';
import { createPublishPolicyActivity } from '../activities/publish-policy.js';
import { createSampleSolutionsActivity } from '../activities/evaluate-sample-solutions.js';
import { createSampleTestResponsesActivity } from '../activities/evaluate-sample-tests.js';
import { createWorker, storageDeps } from './connect.js';

/**
 * The stages that talk to the model servers. publishPolicy materialises checkpoints on this
 * machine's disk before the server loads them, so the model servers run beside this worker.
 */
export function createLlmWorker(env: WorkerEnv): Promise<Worker> {
  const deps = { ...storageDeps(env), secrets: env.secrets };
  return createWorker(env, {
    taskQueue: taskQueues.llm,
    activities: {
      ...createGenerateCodeActivity(deps),
      ...createGenerateTestsActivity(deps),
      ...createSampleSolutionsActivity(deps),
      ...createSampleTestResponsesActivity(deps),
      ...createPublishPolicyActivity({ ...deps, workDir: env.workDir, modelsDir: env.modelsDir }),
    },
  });
}
