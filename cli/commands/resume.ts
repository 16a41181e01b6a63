import { parseArgs } from 'node:util';
import { Client, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { connectTemporal } from '../temporal.js';
import type { RunState, TrainingInput } from '../../workflows/contract.js';
import { followRun, startOrAttach } from '../follow-run.js';
import { addIterationsUpdate, progressQuery, resumeUpdate } from '../../workflows/run-control.js';

/**
 * Continues a run whose training workflow ended before its target: terminated, failed, timed out
 * or stopped. The input comes from the last execution's history (so a nightly run keeps the
 * iteration count that night aimed for), or from `--config` once the history is past the
 * namespace's retention. A running run is attached to, never started twice.
 */
const resume: Command = {
  summary: 'resume <runId> [--config FILE] [--detach]: continue a paused, stopped, terminated or failed run from its last completed iteration',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: 'string' }, detach: { type: 'boolean', default: false } },
    });
    const [runId, ...extra] = positionals;
    if (!runId || extra.length) throw new UsageError('expected one run ID: resume <runId> [--config FILE] [--detach]');
    const env = parseWorkerEnv(process.env);
    const connection = await connectTemporal(env.temporal);
    try {
      const client = new Client({ connection, namespace: env.namespace });
      let input: TrainingInput;
      if (values.config) {
        const { raw, config } = await readConfigFile(values.config, parseRunConfig);
        if (config.runId !== runId) throw new UsageError(`${values.config} configures run '${config.runId}', not '${runId}'`);
        input = { config: raw };
      } else {
        input = await lastInput(client.workflow.getHandle(runId), `namespace ${env.namespace} on ${env.temporalAddress}`);
      }
      const config = parseRunConfig(input.config);
      const handle = await startOrAttach(client, runId, input);
      // A paused run is running: resuming it is an Update, not a start.
      const progress = await handle.query(progressQuery).catch(() => undefined);
      if (progress?.paused) await handle.executeUpdate(resumeUpdate);
      console.log(`run ${runId}: workflow ${handle.workflowId} continues after its last completed iteration (namespace ${env.namespace})`);
      if (!values.detach) await followRun(client, handle, config, env);
      return 0;
    } finally {
      await connection.close();
    }
  },
};
export default resume;

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

async function lastInput(handle: WorkflowHandle, where: string): Promise<TrainingInput> {
  try {
    return trainingInputFrom(await handle.fetchHistory());
  } catch (err) {
    // fetchHistory reports an unknown ID as the raw gRPC NOT_FOUND (5), other calls as WorkflowNotFoundError.
    if (err instanceof WorkflowNotFoundError || (isGrpcServiceError(err) && err.code === 5)) {
      throw new UsageError(`no run '${handle.workflowId}' in ${where} (its history may be past the namespace's retention): give its config with --config FILE`);
    }
    throw err;
  }
}

/**
 * The input that continues a run as its last execution meant: its config and the iteration count
 * it was heading for. An execution started with `moreIterations` (a nightly firing) aimed for the
 * iterations completed when it started (its first activity, loadRunState, recorded them) plus N;
 * starting it again with `moreIterations` would add N to what is completed now instead.
 */
export function trainingInputFrom(history: History): TrainingInput {
  const events = history.events ?? [];
  const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!payload) throw new Error('the run history does not start with a workflow input');
  const input = defaultPayloadConverter.fromPayload<TrainingInput>(payload);
  // Iterations the nightly schedule (or anyone) added with the addIterations Update.
  const added = events
    .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input)
    .filter((u) => u?.name === addIterationsUpdate.name)
    .reduce((sum, u) => sum + defaultPayloadConverter.fromPayload<number>(u!.args!.payloads![0]!), 0);
  if (input.target !== undefined || input.moreIterations === undefined) {
    if (added === 0) return { config: input.config, ...(input.target === undefined ? {} : { target: input.target }) };
    return { config: input.config, target: (input.target ?? parseRunConfig(input.config).iterations) + added };
  }
  const loaded = events.find((e) => e.activityTaskCompletedEventAttributes)?.activityTaskCompletedEventAttributes?.result?.payloads?.[0];
  // Ended before it knew where the run stood: nothing ran, so N more from now is the same target.
  if (!loaded) return { config: input.config, moreIterations: input.moreIterations + added };
  const state = defaultPayloadConverter.fromPayload<RunState>(loaded);
  return { config: input.config, target: state.completed + input.moreIterations + added };
}
