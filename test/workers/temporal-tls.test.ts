import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { parseWorkerEnv } from '../../config/worker-env.js';
import type { WorkerEnv } from '../../config/worker-env.js';
import { createWorker } from '../../workers/connect.js';
import { connectTemporal } from '../../cli/temporal.js';
import { codeA1Iteration } from '../../workflows/iteration.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import { temporalAddress, testNamespace, workflowBundle } from '../support/temporal.js';
import { tempDir, testConfig } from '../support/config.js';
import { recordingStages } from '../support/recording-stages.js';
import { makeCertificates } from '../support/certificates.js';
import type { Certificates } from '../support/certificates.js';
import { startGrpcProxy } from '../support/grpc-proxy.js';
import type { GrpcProxy } from '../support/grpc-proxy.js';

/**
 * Workers and the CLI's client against a Temporal that only speaks TLS: the dev server behind a
 * TLS-terminating gRPC proxy, with throwaway certificates. Connections are built the way the
 * worker entry points and the CLI commands build them, from the environment.
 */
describe('a Temporal behind TLS', () => {
  let certs: Certificates;
  let mtls: GrpcProxy;
  let tlsOnly: GrpcProxy;
  before(async () => {
    certs = await makeCertificates(await tempDir());
    const tls = { key: await certs.read(certs.serverKey), cert: await certs.read(certs.serverCert), ca: await certs.read(certs.ca) };
    mtls = await startGrpcProxy(temporalAddress, { ...tls, requireClientCert: true });
    tlsOnly = await startGrpcProxy(temporalAddress, { ...tls, requireClientCert: false });
  });
  after(async () => {
    await mtls.close();
    await tlsOnly.close();
  });

  const envFor = (proxy: GrpcProxy, more: Record<string, string>) =>
    parseWorkerEnv({
      TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml',
      TEMPORAL_ADDRESS: proxy.address,
      TEMPORAL_NAMESPACE: testNamespace,
      TEMPORAL_TLS_CA: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: certs.serverName,
      ...more,
    });

  it('runs an iteration with workers and a client that present the client certificate', async () => {
    const env = envFor(mtls, { TEMPORAL_TLS_CERT: certs.clientCert, TEMPORAL_TLS_KEY: certs.clientKey });
    assert.equal(env.temporal.security, 'mTLS');
    const { record, runId } = await runIteration(env);
    assert.equal(record.mistakeBookKey, keys.mistakeBook(runId, 0));
    const paths = new Set(mtls.calls.map((c) => c.path.split('/').pop()));
    assert.ok(paths.has('PollWorkflowTaskQueue') && paths.has('PollActivityTaskQueue') && paths.has('StartWorkflowExecution'), [...paths].join(', '));
  });

  it('refuses a worker and a client that have no client certificate', async () => {
    const env = envFor(mtls, {});
    assert.equal(env.temporal.security, 'TLS');
    const calls = mtls.calls.length;
    const refused = (err: Error) => {
      assert.match(err.message, new RegExp(`^cannot connect to Temporal at ${mtls.address} \\(TLS, namespace ${testNamespace}\\): .*; TLS: .*certificate required: the server wants a client certificate \\(TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY\\)$`));
      return true;
    };
    await assert.rejects(createWorker(env, { taskQueue: taskQueues.gpu, activities: {} }), refused);
    await assert.rejects(connectTemporal(env.temporal), refused);
    assert.equal(mtls.calls.length, calls, 'no call got through');
  });

  it('sends TEMPORAL_API_KEY as a bearer token on every call of the workers and the client', async () => {
    const apiKey = `test-key-${randomUUID()}`;
    const env = envFor(tlsOnly, { TEMPORAL_API_KEY: apiKey });
    assert.equal(env.temporal.security, 'TLS + API key');
    await runIteration(env);
    const authorizations = new Set(tlsOnly.calls.map((c) => c.authorization));
    assert.deepEqual([...authorizations], [`Bearer ${apiKey}`]);
    const paths = new Set(tlsOnly.calls.map((c) => c.path.split('/').pop()));
    assert.ok(paths.has('PollWorkflowTaskQueue') && paths.has('StartWorkflowExecution'), [...paths].join(', '));
  });
});

/** One iteration with the recording stages, workers made by createWorker, the client as the CLI makes it. */
async function runIteration(env: WorkerEnv) {
  const dir = await tempDir();
  const config = testConfig(`${dir}/store`);
  const activities = recordingStages({ journal: `${dir}/journal`, gateDir: dir });
  const bundle = await workflowBundle();
  const workers: Worker[] = await Promise.all(
    Object.values(taskQueues).map((taskQueue) =>
      createWorker(env, {
        taskQueue,
        activities,
        shutdownGraceTime: '2 seconds',
        ...(taskQueue === taskQueues.orchestration ? { workflowBundle: bundle } : {}),
      }),
    ),
  );
  const running = workers.map((w) => w.run());
  const connection = await connectTemporal(env.temporal);
  try {
    const client = new Client({ connection, namespace: env.namespace });
    const record = await client.workflow.execute(codeA1Iteration, {
      taskQueue: taskQueues.orchestration,
      workflowId: `${config.runId}/iter-0-${randomUUID()}`,
      args: [{ config, iteration: 0, previous: null }],
    });
    return { record, runId: config.runId };
  } finally {
    await connection.close();
    for (const w of workers) w.shutdown();
    await Promise.all(running);
    await Promise.all(workers.map((w) => w.connection?.close()));
  }
}
