import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { taskQueues } from '../workflows/contract.js';
import { createUpdatePolicyActivity } from '../activities/update-policy.js';
import { createDescribeDevicesActivity } from '../activities/describe-devices.js';
import { createWorker, storageDeps } from './connect.js';

/**
 * Policy updates. One update at a time by default, because one trainer fills a GPU; to update
 * both roles at once (`trainer.parallelRoles`) run one gpu worker per GPU, each with its own
 * CUDA_VISIBLE_DEVICES, or raise CODE_A1_MAX_ACTIVITIES on a machine whose trainers share GPUs.
 * publishPolicy is not here: it belongs with the model servers, on the llm worker.
 */
export function createGpuWorker(env: WorkerEnv): Promise<Worker> {
  return createWorker(env, {
    taskQueue: taskQueues.gpu,
    maxConcurrentActivityTaskExecutions: env.maxActivities ?? 1,
    activities: {
      ...createUpdatePolicyActivity({ ...storageDeps(env), workDir: env.workDir, modelsDir: env.modelsDir }),
      ...createDescribeDevicesActivity(),
    },
  });
}
