import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { Connection } from '@temporalio/client';
import type { WorkerEnv } from '../../config/worker-env.js';
import { taskQueues } from '../../workflows/contract.js';
import { connectTemporal } from '../temporal.js';
import { checkDataset } from './dataset.js';
import { checkDevices } from './devices.js';
import type { Finding } from './finding.js';
import { describe, fail, within } from './finding.js';
import { checkServer } from './model-server.js';
import { checkNamespace } from './namespace.js';
import type { PreflightPlan } from './plan.js';
import { checkStorage } from './storage.js';
import { checkWorkers } from './workers.js';

export type { Finding } from './finding.js';
export type { PreflightPlan } from './plan.js';
export { evaluationPlan, runPlan } from './plan.js';

export interface PreflightOptions {
  env: WorkerEnv;
  /** The caller's Temporal client; without one the pre-flight connects (and reports a failure to) itself. */
  client?: Client;
  /** How long to wait for workers that do not poll yet, in ms (0: report at once). */
  waitForWorkersMs?: number;
  /** Where each line goes (default stdout; `eval` keeps stdout for its JSON report). */
  print?: (line: string) => void;
}

/** No check may take longer than this: a pre-flight is seconds, or it reports what hangs. */
const checkTimeoutMs = 120_000;

/**
 * Every check of a run's or an evaluation's plan, independent ones at once: each prints ✓ or ✗
 * with the exact fix. True when all pass. Reads and writes nothing but a probe object under the
 * run's prefix (deleted again) and a finished device-report workflow, so it can run any number of times.
 */
export async function preflight(plan: PreflightPlan, options: PreflightOptions): Promise<boolean> {
  const { env } = options;
  const print = options.print ?? ((line: string) => console.log(line));
  const guarded = (what: string, work: () => Promise<Finding[]>) =>
    within(checkTimeoutMs + (options.waitForWorkersMs ?? 0), what, work()).catch((err: unknown) => [
      fail(what, `the check itself failed: ${describe(err)}`, 'run the pre-flight again; a check that fails the same way twice is a bug worth reporting with this line'),
    ]);
  const groups = await Promise.all([
    ...plan.datasets.map((dataset) => guarded(dataset.field, async () => [await checkDataset(dataset, env)])),
    ...plan.servers.map((server) => guarded(server.fields.join(', '), () => checkServer(server, env))),
    guarded('storageUri', async () => [await checkStorage(plan, env)]),
    guarded('Temporal', () => checkTemporal(plan, options)),
  ]);
  const findings = groups.flat();
  for (const f of findings) print(`${f.ok ? '✓' : '✗'} ${f.subject}: ${f.detail}${f.fix ? `\n    fix: ${f.fix}` : ''}`);
  const failed = findings.filter((f) => !f.ok).length;
  print(failed === 0 ? `preflight of ${plan.subject}: all ${findings.length} checks passed` : `preflight of ${plan.subject}: ${failed} of ${findings.length} checks failed`);
  return failed === 0;
}

async function checkTemporal(plan: PreflightPlan, options: PreflightOptions): Promise<Finding[]> {
  const { env } = options;
  let connection: Connection | undefined;
  let client = options.client;
  if (!client) {
    try {
      connection = await connectTemporal(env.temporal);
    } catch (err) {
      return [fail(`Temporal at ${env.temporalAddress}`, `cannot connect: ${describe(err)}`, 'start Temporal (local stack: npx code-a1 stack up) or set TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the TLS variables of your cluster')];
    }
    client = new Client({ connection, namespace: env.namespace });
  }
  try {
    const namespace = await checkNamespace(client, env);
    if (!namespace.ok) return [namespace];
    const workers = await checkWorkers(client, env, plan, options.waitForWorkersMs ?? 0);
    const findings = [namespace, ...workers.findings];
    if (plan.trainerDevices !== undefined && plan.deviceReportId !== undefined) {
      if (workers.polled.has(taskQueues.gpu) && workers.polled.has(taskQueues.orchestration)) findings.push(await checkDevices(client, plan.deviceReportId, plan.trainerDevices));
    }
    return findings;
  } finally {
    await connection?.close();
  }
}

/**
 * For the commands that start something (`run`, `schedule create`, `eval`): the pre-flight before
 * anything starts, unless `skip`; false, after saying why nothing started, when a check failed.
 */
export async function cleared(
  command: string,
  plan: PreflightPlan,
  options: PreflightOptions & { client: Client; skip: boolean | undefined; unlessRunning?: string },
): Promise<boolean> {
  if (options.skip) return true;
  // Attaching to a running workflow starts nothing, and its policy update may hold the gpu worker.
  if (options.unlessRunning !== undefined && (await isRunning(options.client, options.unlessRunning))) return true;
  if (await preflight(plan, options)) return true;
  console.error(`code-a1 ${command}: nothing started: fix what the pre-flight found above (npx code-a1 preflight --config FILE checks again), or pass --skip-preflight`);
  return false;
}

async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
