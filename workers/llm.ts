import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createGenerateCodeActivity } from '../activities/generate-code.js';
import { createGenerateTestsActivity } from '../activities/generate-tests.js';
import { createPublishPolicyActivity } from '../activities/publish-policy.js';
import { createSampleSolutionsActivity } from '../activities/evaluate-sample-solutions.js';
import { createSampleTestResponsesActivity } from '../activities/evaluate-sample-tests.js';
import { ensureServed, verifyServed } from '../activities/llm/index.js';
import type { ModelEndpoint } from '../config/run-config.js';
import { replicasOf } from '../config/run-config.js';
import { createWorker, storageDeps } from './connect.js';

/**
 * The stages that talk to the model servers. publishPolicy materialises checkpoints on this
 * machine's disk before the server loads them, so the model servers run beside this worker.
 */
export function createLlmWorker(env: WorkerEnv): Promise<Worker> {
  const serving = { ...storageDeps(env), secrets: env.secrets, workDir: env.workDir, modelsDir: env.modelsDir };
  // Generation re-checks the served weights at every attempt: a restarted server forgets them. A
  // server beside this worker is published to again; one on another host (its publish worker's
  // job) is only checked, and the workflow republishes it when the check fails.
  const deps = {
    ...serving,
    ensureServed: (model: ModelEndpoint, checkpoint: string, replica: number) =>
      replicasOf(model)[replica]?.host ? verifyServed(serving, model, checkpoint, replica) : ensureServed(serving, model, checkpoint, replica),
  };
  return createWorker(env, {
    taskQueue: taskQueues.llm,
    activities: {
      ...createGenerateCodeActivity(deps),
      ...createGenerateTestsActivity(deps),
      ...createSampleSolutionsActivity(deps),
      ...createSampleTestResponsesActivity(deps),
      ...createPublishPolicyActivity(serving),
    },
  });
}
