import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { workflowsPath } from '../../../workers/connect.js';
import { algorithmSchema, parseRunConfig } from '../../../config/run-config.js';
import type { RunConfigInput } from '../../../config/run-config.js';
import { taskQueues } from '../../../workflows/contract.js';
import { codeA1Training } from '../../../workflows/training.js';
import { iterationWorkflowId } from '../../../workflows/iteration.js';
import { benchStages, busyMs } from './orchestration-stages.js';
import type { Interval } from './orchestration-stages.js';

export interface TrainingRun {
  runId: string;
  wallMs: number;
  /** Time during which at least one activity was running. */
  activityMs: number;
}

/**
 * Whole codeA1Training runs, as `code-a1 run` starts them, with every stage replaced by one that
 * waits `stageMs` (see orchestration-stages.ts) and artifacts in a file:// store under `dir`.
 * `train` needs workers serving `activities` (withWorkers).
 */
export function trainingRuns(client: Client, dir: string) {
  const intervals: Interval[] = [];
  let stageMs = 0;
  const activities = benchStages(() => stageMs, (i) => intervals.push(i));

  async function train(label: string, options: { iterations: number; batchSize?: number; stageMs?: number }): Promise<TrainingRun> {
    const config: RunConfigInput = {
      runId: `bench-${label}-${randomUUID().slice(0, 8)}`,
      storageUri: `file://${join(dir, 'store')}`,
      models: {
        code: { baseUrl: 'http://127.0.0.1:1/v1', model: 'code', checkpoint: 'init/code' },
        test: { baseUrl: 'http://127.0.0.1:1/v1', model: 'test', checkpoint: 'init/test' },
      },
      // Everything else at the paper's defaults, so that every activity input has its real shape.
      algorithm: { batchSize: options.batchSize ?? algorithmSchema.parse({}).batchSize },
      iterations: options.iterations,
    };
    parseRunConfig(config);
    stageMs = options.stageMs ?? 0;
    intervals.length = 0;
    const started = performance.now();
    const handle = await client.workflow.start(codeA1Training, { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [{ config }] });
    await handle.result();
    return { runId: config.runId, wallMs: performance.now() - started, activityMs: busyMs(intervals) };
  }

  /** Events and payload bytes of each iteration's child workflow, and of the parent. */
  async function histories(run: TrainingRun, iterations: number) {
    const children = await Promise.all(Array.from({ length: iterations }, (_, n) => historySize(client, iterationWorkflowId(run.runId, n))));
    return { children, parent: await historySize(client, run.runId) };
  }

  return { activities, train, histories };
}

/**
 * Runs `body` while workers on every task queue serve `activities` and the workflows, each on a
 * connection of its own as `code-a1 worker all` runs them (workers/connect.ts).
 */
export async function withWorkers<T>(
  address: string,
  namespace: string,
  activities: Record<string, (input: never) => Promise<unknown>>,
  body: () => Promise<T>,
): Promise<T> {
  const connections: NativeConnection[] = [];
  try {
    const workers = await Promise.all(
      Object.values(taskQueues).map(async (taskQueue) => {
        const connection = await NativeConnection.connect({ address });
        connections.push(connection);
        return Worker.create({
          connection,
          namespace,
          taskQueue,
          activities,
          shutdownGraceTime: '2 seconds',
          ...(taskQueue === taskQueues.orchestration ? { workflowsPath } : {}),
        });
      }),
    );
    const running = Promise.all(workers.map((w) => w.run()));
    try {
      // Workers stop only by failing here (signals are not theirs): then the runs would wait forever.
      return await Promise.race([body(), running.then(() => Promise.reject(new Error('the workers stopped during the benchmark')))]);
    } finally {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running.catch(() => undefined);
    }
  } finally {
    await Promise.all(connections.map((c) => c.close()));
  }
}

/** temporal.api.enums.v1.EventType values of the workflow-task events. */
const workflowTaskEvents = new Set([5, 6, 7, 8, 9]);

/**
 * Events in a workflow's history, and those of them that are not workflow-task events: the latter
 * follow from the workflow's code alone, while the number of workflow tasks depends on timing too
 * (two activities running side by side complete in one workflow task or in two; a task that timed
 * out is retried). Payload bytes are those of every payload in the history, data and metadata.
 */
async function historySize(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  return {
    events: events.length,
    nonWorkflowTaskEvents: events.filter((e) => !workflowTaskEvents.has(Number(e.eventType))).length,
    payloadBytes: binaryBytes(history),
  };
}

export function binaryBytes(value: unknown): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (value === null || typeof value !== 'object') return 0;
  return Object.values(value).reduce((sum: number, v) => sum + binaryBytes(v), 0);
}
