import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createGenerateCodeActivity } from '../activities/generate-code.js';
import { createGenerateTestsActivity } from '../activities/generate-tests.js';
import { createWorker, storageDeps } from './connect.js';

/** The stages that talk to the model servers. */
export function createLlmWorker(env: WorkerEnv): Promise<Worker> {
  const deps = { ...storageDeps(env), secrets: env.secrets };
  return createWorker(env, {
    taskQueue: taskQueues.llm,
    activities: {
      ...createGenerateCodeActivity(deps),
      ...createGenerateTestsActivity(deps),
    },
  });
}
