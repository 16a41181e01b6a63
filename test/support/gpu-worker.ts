/**
 * A GPU worker process for the policy-update retry tests: serves updatePolicy (with the workers'
 * error classification) on one task queue, with a work directory of its own, as another host
 * would. With `--hold-manifest` its store never finishes writing a checkpoint manifest and prints
 * `holding <key>` instead, so that a test can kill -9 it at exactly that point: after the
 * trainer's output is stored, before the checkpoint exists.
 * Usage: node --import tsx test/support/gpu-worker.ts <namespace> <taskQueue> <workDir> [--hold-manifest]
 *   (TEMPORAL_ADDRESS, and CODE_A1_GPU_WORKER_S3: the S3 connection as JSON, from the environment)
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createUpdatePolicyActivity } from '../../activities/update-policy.js';
import { withErrorClassification } from '../../activities/errors.js';
import type { ObjectStore, S3Connection } from '../../activities/storage/index.js';
import { openStore } from '../../activities/storage/index.js';
import { MANIFEST } from '../../activities/trainer/index.js';

const [namespace, taskQueue, workDir, flag] = process.argv.slice(2);
if (!namespace || !taskQueue || !workDir) throw new Error('usage: gpu-worker.ts <namespace> <taskQueue> <workDir> [--hold-manifest]');
const holdManifest = flag === '--hold-manifest';
const s3 = process.env.CODE_A1_GPU_WORKER_S3 ? (JSON.parse(process.env.CODE_A1_GPU_WORKER_S3) as S3Connection) : undefined;

function storeAt(uri: string): ObjectStore {
  const real = openStore(uri, s3);
  if (!holdManifest) return real;
  return Object.assign(Object.create(real) as ObjectStore, {
    putIfAbsent: (key: string, body: Uint8Array | string) => {
      if (!key.endsWith(`/${MANIFEST}`)) return real.putIfAbsent(key, body);
      console.log(`holding ${key}`);
      return new Promise<boolean>(() => {});
    },
  });
}

Runtime.install({ logger: new DefaultLogger('WARN') });
const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
const worker = await Worker.create({
  connection,
  namespace,
  taskQueue,
  // One update at a time, as the project's gpu worker: a held attempt keeps this worker from taking its retry.
  maxConcurrentActivityTaskExecutions: 1,
  activities: withErrorClassification(createUpdatePolicyActivity({ openStore: storeAt, workDir, modelsDir: `${workDir}/models` })),
});
const running = worker.run();
console.log('ready');
await running;
await connection.close();
