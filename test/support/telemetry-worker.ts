/**
 * A worker process as `code-a1 worker all` makes it (createWorker, the environment parsed by
 * parseWorkerEnv, so CODE_A1_METRICS_ADDRESS and OTEL_EXPORTER_OTLP_ENDPOINT apply), serving the
 * recording stages with the numbers real stages report, for the telemetry tests: the SDK's runtime
 * can be installed once per process, and the test process has installed its own.
 * Usage: node --import tsx test/support/telemetry-worker.ts <dir> <httpUrl>   (environment as a worker's)
 */
import { parseWorkerEnv } from '../../config/worker-env.js';
import { createWorker, workflowsPath } from '../../workers/connect.js';
import { shutdownTelemetry } from '../../workers/telemetry.js';
import { taskQueues } from '../../workflows/contract.js';
import { telemetryStages } from './telemetry-stages.js';

const [dir, httpUrl] = process.argv.slice(2);
if (!dir || !httpUrl) throw new Error('usage: telemetry-worker.ts <dir> <httpUrl>');

const activities = telemetryStages(dir, httpUrl);

const env = parseWorkerEnv(process.env);
const workers = await Promise.all(
  Object.values(taskQueues).map((taskQueue) =>
    createWorker(env, {
      taskQueue,
      activities,
      shutdownGraceTime: '2 seconds',
      ...(taskQueue === taskQueues.orchestration ? { workflowsPath } : {}),
    }),
  ),
);
const running = Promise.all(workers.map((w) => w.run()));
console.log('ready');
// SIGTERM stops the workers (the SDK's runtime handles it); then the batched spans go out.
await running;
await shutdownTelemetry();
