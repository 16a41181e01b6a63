import { ActivityFailure, ApplicationFailure, defineQuery, executeChild, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import type { RunConfig } from '../config/run-config.js';
import { replicasOf } from '../config/run-config.js';
import type {
  GpuActivities,
  IterationInput,
  IterationRecord,
  LlmActivities,
  OrchestrationActivities,
  PolicyCheckpoint,
  SandboxActivities,
  Stage,
  StageResult,
} from './contract.js';
import { publishTaskQueue, taskQueues } from './contract.js';
import { quick, stageOptions } from './activity-options.js';
import { codeA1Evaluate } from './evaluate.js';
import type { EvaluationReport } from './evaluate.js';

export interface IterationProgress {
  iteration: number;
  stage: Stage;
  completedStages: Stage[];
}

export const iterationProgressQuery = defineQuery<IterationProgress>('progress');

/**
 * One Code-A1 iteration (docs/code-a1.md, steps 1-9). Every stage reads its inputs from object
 * storage by key and writes its output at a key derived from (run, iteration, stage), so the
 * history holds keys and small summaries whatever the batch size, and a retried stage finds its
 * finished output instead of redoing the work.
 */
export async function codeA1Iteration({ config, iteration, previous }: IterationInput): Promise<IterationRecord> {
  const ref = { runId: config.runId, iteration, storageUri: config.storageUri };
  const options = stageOptions(config.timeouts, config.trainer);
  const bookkeeping = proxyActivities<OrchestrationActivities>(quick);
  const orchestration = proxyActivities<OrchestrationActivities>(options.orchestration);
  const llm = proxyActivities<LlmActivities>(options.generate);
  const publisher = proxyActivities<LlmActivities>(options.publish);
  const hostPublishers = new Map<string, LlmActivities>();
  const publisherOn = (host: string | undefined) => {
    if (host === undefined) return publisher;
    if (!hostPublishers.has(host)) hostPublishers.set(host, proxyActivities<LlmActivities>({ ...options.publish, taskQueue: publishTaskQueue(host) }));
    return hostPublishers.get(host)!;
  };
  /**
   * Every server of the role serves `checkpoint` once this returns: one publishPolicy per replica,
   * on the publish queue of its host (or the llm queue for a server beside the llm worker). A
   * single local server schedules exactly what iterations recorded before replicas did.
   */
  const publishAll = (role: 'code' | 'test', checkpoint: string) =>
    Promise.all(
      replicasOf(config.models[role]).map((replica, index) =>
        publisherOn(replica.host).publishPolicy({ ...ref, role, model: config.models[role], checkpoint, ...(index > 0 ? { replica: index } : {}) }),
      ),
    );
  /**
   * A generation stage that found a remote replica not serving its checkpoint (it restarted) fails
   * with ReplicaNeedsPublishError: publish again and rerun it; its stored shards are kept. Bounded,
   * so a server that keeps losing its weights fails the run instead of looping.
   */
  async function generating(role: 'code' | 'test', run: () => Promise<StageResult>): Promise<StageResult> {
    for (let republished = 0; ; republished++) {
      try {
        return await run();
      } catch (err) {
        const needsPublish = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'ReplicaNeedsPublishError';
        if (!needsPublish || republished >= 5) throw err;
        await publishAll(role, base[role]);
      }
    }
  }
  const sandbox = proxyActivities<SandboxActivities>(options.execute);
  const gpu = proxyActivities<GpuActivities>(options.train);

  const progress: IterationProgress = { iteration, stage: 'sampleBatch', completedStages: [] };
  setHandler(iterationProgressQuery, () => progress);
  const results: Partial<Record<Stage, StageResult>> = {};
  const durations: Partial<Record<Stage, number>> = {};

  async function stage<T>(name: Stage, run: () => Promise<T>): Promise<T> {
    progress.stage = name;
    const started = Date.now();
    const out = await run();
    durations[name] = Date.now() - started;
    progress.completedStages.push(name);
    return out;
  }
  async function keyed(name: Stage, run: () => Promise<StageResult>): Promise<StageResult> {
    const out = await stage(name, run);
    results[name] = out;
    return out;
  }

  // Rollouts come from the checkpoints the previous iteration produced; the frozen reference
  // for the KL term is always the run's initial checkpoint.
  const base = {
    code: previous?.checkpoints.code ?? config.models.code.checkpoint,
    test: previous?.checkpoints.test ?? config.models.test.checkpoint,
  };
  const previousBook = previous?.mistakeBookKey ?? null;
  const { algorithm } = config;

  const batch = await keyed('sampleBatch', () =>
    orchestration.sampleBatch({ ...ref, dataset: config.dataset, batchSize: algorithm.batchSize, seed: config.seed }),
  );
  // Published at the start rather than after training, so that an iteration resumed after a
  // model server restart still samples from the weights it expects.
  await stage('publishPolicy', () =>
    Promise.all(
      (['code', 'test'] as const).map((role) => publishAll(role, base[role])),
    ),
  );
  const code = await keyed('generateCode', () =>
    generating('code', () => llm.generateCode({
      ...ref,
      batchKey: batch.key,
      model: config.models.code,
      checkpoint: base.code,
      nCode: algorithm.nCode,
      seed: config.seed,
    })),
  );
  const tests = await keyed('generateTests', () =>
    generating('test', () => llm.generateTests({
      ...ref,
      batchKey: batch.key,
      codeKey: code.key,
      model: config.models.test,
      checkpoint: base.test,
      nTest: algorithm.nTest,
      testsPerResponse: algorithm.testsPerResponse,
      seed: config.seed,
    })),
  );
  const executeInput = {
    ...ref,
    batchKey: batch.key,
    codeKey: code.key,
    testsKey: tests.key,
    mistakeBookKey: previousBook,
    algorithm,
    sandbox: config.sandbox,
  };
  // Fanned out over every sandbox worker: one executeShard per block of problems, merged by key.
  // Behind a patch: iterations recorded before it ran one execute activity and must replay so.
  const execution = await keyed('execute', async () => {
    if (!patched('execute-fan-out')) return sandbox.execute(executeInput);
    // A run started before these settings existed hands its iterations a config without them.
    const problemsPerShard = config.sandbox.problemsPerShard ?? 16;
    const problems = batch.summary.problems ?? algorithm.batchSize;
    const shards = await boundedAll(Math.ceil(problems / problemsPerShard), config.sandbox.parallelShards ?? 64, (shard) =>
      sandbox.executeShard({ ...executeInput, shard, problemsPerShard }),
    );
    return orchestration.mergeExecution({ ...ref, shards, problems });
  });
  const scores = await keyed('score', () =>
    orchestration.score({ ...ref, executionKey: execution.key, mistakeBookKey: previousBook, algorithm }),
  );
  await keyed('updateMistakeBook', () =>
    orchestration.updateMistakeBook({ ...ref, scoresKey: scores.key, previousKey: previousBook, algorithm }),
  );

  const update = (role: 'code' | 'test') =>
    gpu.updatePolicy({
      ...ref,
      role,
      rolloutsKey: role === 'code' ? code.key : tests.key,
      scoresKey: scores.key,
      baseCheckpoint: base[role],
      referenceCheckpoint: config.models[role].checkpoint,
      trainer: config.trainer,
    });
  const updated: PolicyCheckpoint[] = await stage('updatePolicy', async () =>
    config.trainer.parallelRoles ? Promise.all([update('code'), update('test')]) : [await update('code'), await update('test')],
  );

  // Evaluation every K iterations (off by default). Behind a patch: iterations recorded before it
  // existed carry configs without an `evaluation` section and must replay unchanged.
  if (patched('evaluate-every-k') && evaluationDue(config, iteration)) {
    await keyed('evaluate', async () => {
      // The evaluation samples from the serving endpoint, so the new Code LLM is published first;
      // the next iteration's publishPolicy then finds it served and does nothing.
      const trained = updated[0]!.checkpoint;
      await publishAll('code', trained);
      const report = await executeChild(codeA1Evaluate, {
        workflowId: `${iterationWorkflowId(config.runId, iteration)}/evaluate`,
        taskQueue: taskQueues.orchestration,
        args: [{ config: evaluationInput(config, iteration, trained) }],
      });
      return { key: report.reportKey, summary: evaluationSummary(report) };
    });
  }

  return stage('recordIteration', () =>
    bookkeeping.recordIteration({ ...ref, stageResults: results, policies: updated, stageDurationsMs: durations }),
  );
}

/** `count` calls of `run`, at most `limit` in flight, results in index order (deterministic: plain promises). */
async function boundedAll<T>(count: number, limit: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await run(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return results;
}

export function iterationWorkflowId(runId: string, iteration: number): string {
  return `${runId}/iter-${iteration}`;
}

function evaluationDue(config: RunConfig, iteration: number): boolean {
  const every = config.evaluation?.every ?? 0;
  return every > 0 && (iteration + 1) % every === 0;
}

/** The codeA1Evaluate input for the Code LLM this iteration trained, served by the run's endpoint. */
function evaluationInput(config: RunConfig, iteration: number, checkpoint: string): unknown {
  const e = config.evaluation;
  return {
    evalId: `${config.runId}-iter-${iteration}`,
    storageUri: config.storageUri,
    dataset: { uri: e.datasetUri, ...(e.sources ? { sources: e.sources } : {}), ...(e.maxProblems ? { maxProblems: e.maxProblems } : {}) },
    model: { ...config.models.code, checkpoint, sampling: e.sampling },
    samples: e.samples,
    ks: e.ks,
    seed: config.seed,
    timeouts: {
      heartbeatSeconds: Math.ceil(config.timeouts.heartbeatSeconds),
      sampleMinutes: Math.ceil(config.timeouts.generateMinutes),
      executeMinutes: Math.ceil(config.timeouts.executeMinutes),
    },
  };
}

/** `<benchmark>.avgAtN` and `<benchmark>.passAt<k>`, as fractions. */
function evaluationSummary(report: EvaluationReport): Record<string, number> {
  const summary: Record<string, number> = {};
  for (const b of report.benchmarks) {
    summary[`${b.dataSource}.avgAtN`] = b.avgAtN;
    for (const [k, v] of Object.entries(b.passAtK)) summary[`${b.dataSource}.passAt${k}`] = v;
  }
  return summary;
}
