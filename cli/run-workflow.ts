import { setTimeout as sleep } from 'node:timers/promises';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Connection } from '@temporalio/client';
import { parseWorkerEnv } from '../config/worker-env.js';
import type { TrainingProgress } from '../workflows/contract.js';
import { progressQuery } from '../workflows/run-control.js';
import { blockedLine } from '../workflows/blocked.js';
import { UsageError } from './command.js';
import type { Command } from './command.js';
import { connectTemporal } from './temporal.js';

/**
 * The run's one training workflow (ID = run ID) in the environment's namespace, for the commands
 * that talk to a run: `retry`, `pause`, `stop`, `resume`, `report`.
 */
export async function withRunWorkflow<T>(body: (client: Client, where: string) => Promise<T>, connect: () => Promise<Connection> = () => connectTemporal(parseWorkerEnv(process.env).temporal)): Promise<T> {
  const env = parseWorkerEnv(process.env);
  const connection = await connect();
  try {
    return await body(new Client({ connection, namespace: env.namespace }), `namespace ${env.namespace} on ${env.temporalAddress}`);
  } finally {
    await connection.close();
  }
}

/**
 * Sends an Update to run `runId` and prints where the run stands after it. A run that is not
 * running, or that rejects the Update (its validator: e.g. retrying a run that is not blocked),
 * is a usage error with the reason.
 */
export async function updateRun(runId: string, update: UpdateDefinition<TrainingProgress, []>, done: string): Promise<number> {
  return withRunWorkflow(async (client, where) => {
    let progress: TrainingProgress;
    try {
      progress = await client.workflow.getHandle(runId).executeUpdate(update);
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new UsageError(`no running run '${runId}' in ${where}: resume it with npx code-a1 resume ${runId}`);
      const reason = (err as { cause?: Error }).cause?.message;
      if (reason) throw new UsageError(`run ${runId}: ${reason}`);
      throw err;
    }
    console.log(`run ${runId}: ${done}; ${describeProgress(progress)}`);
    return 0;
  });
}

/** One line: iterations, the stage, and the blocked state with the command that retries it. */
export function describeProgress(p: TrainingProgress): string {
  const flags = [p.paused && 'paused', p.stopping && 'stopping'].filter(Boolean).join(', ');
  const where = p.currentIteration === null ? '' : `, iteration ${p.currentIteration}${p.stage ? ` in ${p.stage}` : ''}`;
  const head = `${p.completedIterations}/${p.targetIterations} iterations done${where}${flags ? ` [${flags}]` : ''}`;
  return p.blocked ? `${head}\n${blockedLine(p.blocked)}\nafter fixing the cause: npx code-a1 retry ${p.runId}` : head;
}

/**
 * The progress of the run's workflow when it is running and answers within seconds; undefined
 * otherwise (no Temporal here, no such run, no worker to answer). For commands that read a run
 * from storage and add what only the workflow knows, such as a blocked stage.
 */
export async function queryRunProgress(runId: string): Promise<TrainingProgress | undefined> {
  const env = parseWorkerEnv(process.env);
  try {
    return await withRunWorkflow(
      async (client) => {
        const handle = client.workflow.getHandle(runId);
        if ((await handle.describe()).status.name !== 'RUNNING') return undefined;
        return await Promise.race([handle.query(progressQuery), sleep(5_000).then(() => undefined)]);
      },
      () => connectTemporal({ ...env.temporal, clientOptions: () => ({ ...env.temporal.clientOptions(), connectTimeout: 2_000 }) }),
    );
  } catch {
    return undefined;
  }
}

/** A command `<verb> <runId>` that sends one Update to the run (pause, stop, retry). */
export function runUpdateCommand(verb: string, summary: string, update: UpdateDefinition<TrainingProgress, []>, done: string): Command {
  return {
    summary,
    async run(argv) {
      const [runId, ...rest] = argv;
      if (!runId || rest.length) throw new UsageError(`expected one run ID: ${verb} <runId>`);
      return updateRun(runId, update, done);
    },
  };
}
