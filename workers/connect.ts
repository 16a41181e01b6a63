import { NativeConnection, Worker } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import type { WorkerEnv } from '../config/worker-env.js';
import { connectionError } from '../config/temporal-connection.js';
import { withErrorClassification } from '../activities/errors.js';
import type { StorageDeps } from '../activities/deps.js';
import { openStore } from '../activities/storage/index.js';
import { workerTelemetry } from './telemetry.js';

/** The workflow bundle's entry; only the orchestration worker runs workflows. */
export const workflowsPath = new URL('../workflows/index.ts', import.meta.url).pathname;

export function storageDeps(env: WorkerEnv): StorageDeps {
  return { openStore: (uri) => openStore(uri, env.s3) };
}

/**
 * A worker on one task queue. SIGINT/SIGTERM are handled by the SDK runtime: the worker stops
 * polling, lets running activities finish within the grace time, and `run()` resolves.
 */
export async function createWorker(
  env: WorkerEnv,
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'activities'> & {
    activities: Record<string, (...args: never[]) => Promise<unknown>>;
  },
): Promise<Worker> {
  const telemetry = workerTelemetry(env.telemetry);
  const connection = await NativeConnection.connect(env.temporal.nativeOptions()).catch(async (err) => {
    throw await connectionError(env.temporal, err);
  });
  return Worker.create({
    connection,
    namespace: env.namespace,
    shutdownGraceTime: '30 seconds',
    ...(env.maxActivities ? { maxConcurrentActivityTaskExecutions: env.maxActivities } : {}),
    ...options,
    ...(telemetry.plugins ? { plugins: [...telemetry.plugins, ...(options.plugins ?? [])] } : {}),
    interceptors: { ...options.interceptors, activity: [...telemetry.activityInterceptors, ...(options.interceptors?.activity ?? [])] },
    activities: withErrorClassification(options.activities),
  });
}
