import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { taskQueues } from '../../workflows/contract.js';
import { workflowsPath } from '../../workers/connect.js';

/**
 * Tests run against a real Temporal dev server (started by the test command), in a namespace of
 * their own so that workers of a local run on the same server never pick up test tasks.
 */
export const temporalAddress = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
export const testNamespace = 'code-a1-test';

Runtime.install({ logger: new DefaultLogger('WARN') });

export async function connectClient(address = temporalAddress): Promise<{ client: Client; close(): Promise<void> }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection, namespace: testNamespace }), close: () => connection.close() };
}

let bundle: Promise<{ code: string }> | undefined;

/** The workflow bundle is built once per test process: webpack takes seconds. */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= import('@temporalio/worker').then(({ bundleWorkflowCode }) =>
    bundleWorkflowCode({ workflowsPath, logger: quietLogger }),
  );
  return bundle;
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string, meta?: unknown) {
    console.error(message, meta);
  },
};

/** Runs `body` while workers serve every task queue of the project with the given activities. */
type Activities = Record<string, (...args: never[]) => Promise<unknown>>;

/**
 * Runs `body` with workers for every task queue of the contract serving `activities` (and the
 * workflows on the orchestration queue), plus a worker per entry of `more` (task queue ->
 * activities), e.g. the publish queues of serving hosts.
 */
export async function withWorker<T>(activities: Activities, body: () => Promise<T>, address = temporalAddress, more: Record<string, Activities> = {}): Promise<T> {
  const connection = await NativeConnection.connect({ address });
  try {
    const queues: [string, Activities][] = [...Object.values(taskQueues).map((q): [string, Activities] => [q, activities]), ...Object.entries(more)];
    const workers = await Promise.all(
      queues.map(async ([taskQueue, served]) =>
        Worker.create({
          connection,
          namespace: testNamespace,
          taskQueue,
          shutdownGraceTime: '2 seconds',
          activities: served,
          ...(taskQueue === taskQueues.orchestration ? { workflowBundle: await workflowBundle() } : {}),
        }),
      ),
    );
    const running = workers.map((w) => w.run());
    try {
      return await body();
    } finally {
      for (const w of workers) w.shutdown();
      // Wait for every worker to stop, even when the body failed, before the connection closes.
      const stopped = await Promise.allSettled(running);
      const failed = stopped.find((s) => s.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  } finally {
    await connection.close();
  }
}
