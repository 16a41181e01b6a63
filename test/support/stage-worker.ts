/**
 * A worker process for durability tests: serves every task queue of the test namespace with the
 * recording stages, so a test can kill -9 it mid-stage and start another.
 * Usage: node --import tsx test/support/stage-worker.ts <journal> <gateDir>   (TEMPORAL_ADDRESS from env)
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import { taskQueues } from '../../workflows/contract.js';
import { workflowsPath } from '../../workers/connect.js';
import { recordingStages } from './recording-stages.js';
import { createRunControlActivities } from '../../activities/add-iterations.js';

const [journal, gateDir] = process.argv.slice(2);
if (!journal || !gateDir) throw new Error('usage: stage-worker.ts <journal> <gateDir>');

Runtime.install({ logger: new DefaultLogger('ERROR') });
const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
const connection = await NativeConnection.connect({ address });
// The nightly schedule's activity is the real one: it talks to this test's Temporal server.
const client = Connection.connect({ address }).then((c) => new Client({ connection: c, namespace: 'code-a1-test' }));
const activities = { ...recordingStages({ journal, gateDir }), ...createRunControlActivities({ client: () => client }) };
const workers = await Promise.all(
  Object.values(taskQueues).map((taskQueue) =>
    Worker.create({
      connection,
      namespace: 'code-a1-test',
      taskQueue,
      activities,
      ...(taskQueue === taskQueues.orchestration ? { workflowsPath } : {}),
    }),
  ),
);
const running = Promise.all(workers.map((w) => w.run()));
console.log('ready');
await running;
await connection.close();
