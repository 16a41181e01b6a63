import type { Worker } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { publishTaskQueue } from '../workflows/contract.js';
import { createPublishPolicyActivity } from '../activities/publish-policy.js';
import { createWorker, storageDeps } from './connect.js';

/**
 * The small worker beside an inference server on another host (a model config's `host`): it
 * downloads each checkpoint to this host's disk (CODE_A1_WORK_DIR), where vLLM or SGLang can read
 * it, and calls the local server's publishing routes. One per serving host.
 */
export function createPublishWorker(env: WorkerEnv, host: string): Promise<Worker> {
  return createWorker(env, {
    taskQueue: publishTaskQueue(host),
    activities: { ...createPublishPolicyActivity({ ...storageDeps(env), secrets: env.secrets, workDir: env.workDir, modelsDir: env.modelsDir }) },
  });
}
