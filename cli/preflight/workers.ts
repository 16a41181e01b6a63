import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { WorkerEnv } from '../../config/worker-env.js';
import type { Finding } from './finding.js';
import { fail, pass } from './finding.js';
import type { PreflightPlan, QueueUnderCheck } from './plan.js';

// temporal.api.enums.v1: TaskQueueKind NORMAL = 1; TaskQueueType WORKFLOW = 1, ACTIVITY = 2.
const normalKind = 1;
const typeCodes = { workflow: 1, activity: 2 } as const;

/**
 * A worker polls every task queue the plan uses, as Temporal itself lists them (describeTaskQueue's
 * pollers, which it keeps for a few minutes after a worker's last poll). Queues without one are
 * asked again every second for up to `waitMs`, for workers started a moment ago (`make run`).
 * Resolves with the findings and the queues that have workers.
 */
export async function checkWorkers(client: Client, env: WorkerEnv, plan: PreflightPlan, waitMs: number): Promise<{ findings: Finding[]; polled: Set<string> }> {
  const deadline = Date.now() + waitMs;
  let missing: { queue: QueueUnderCheck; type: keyof typeof typeCodes }[] = plan.queues.flatMap((queue) => queue.types.map((type) => ({ queue, type })));
  for (;;) {
    const polled = await Promise.all(missing.map(({ queue, type }) => hasPoller(client, env.namespace, queue.name, type)));
    missing = missing.filter((_, i) => !polled[i]);
    if (missing.length === 0 || Date.now() >= deadline) break;
    await sleep(1_000);
  }
  const lacking = new Set(missing.map(({ queue }) => queue.name));
  const findings = [...lacking].map((name) => {
    const queue = plan.queues.find((q) => q.name === name)!;
    const types = missing.filter((m) => m.queue.name === name).map((m) => m.type);
    return fail(`task queue ${name}`, `no worker polls it for ${types.join(' or ')} tasks in namespace ${env.namespace}`, `start its worker: ${queue.worker}, with TEMPORAL_ADDRESS=${env.temporalAddress} TEMPORAL_NAMESPACE=${env.namespace}`);
  });
  const served = plan.queues.filter((q) => !lacking.has(q.name));
  if (served.length > 0) findings.unshift(pass('workers', `poll ${served.map((q) => q.name).join(', ')}`));
  return { findings, polled: new Set(served.map((q) => q.name)) };
}

async function hasPoller(client: Client, namespace: string, name: string, type: keyof typeof typeCodes): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name, kind: normalKind }, taskQueueType: typeCodes[type] });
  return (pollers?.length ?? 0) > 0;
}
