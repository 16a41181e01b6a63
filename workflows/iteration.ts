import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunConfig } from '../config/run-config.js';
import { replicasOf } from '../config/run-config.js';
import type {
  BlockedStage,
  GpuActivities,
  IterationInput,
  IterationRecord,
  LlmActivities,
  OrchestrationActivities,
  PolicyCheckpoint,
  RoundKeys,
  SandboxActivities,
  Stage,
  StageResult,
} from './contract.js';
import { publishTaskQueue, taskQueues } from './contract.js';
import { attemptBudget, stageOptions } from './activity-options.js';
import { blockedLine, blocksStage, describeBlocked } from './blocked.js';
import { retryStageSignal, stageReportSignal } from './run-control.js';
import { blockedAttribute, stageAttribute } from './search-attributes.js';
import { codeA1Evaluate } from './evaluate.js';
import type { EvaluationReport } from './evaluate.js';

export interface IterationProgress {
  iteration: number;
  stage: Stage;
  completedStages: Stage[];
  /** Absent in iterations recorded before blocking existed. */
  blocked?: BlockedStage | null;
  /** The sampling round the batch stages are in: 0, or an extra round of dynamic sampling. */
  round?: number;
}

export const iterationProgressQuery = defineQuery<IterationProgress>('progress');
/** Runs the blocked stage again: for an iteration started on its own; a run's iterations are retried through the run. */
export const iterationRetryUpdate = defineUpdate<IterationProgress>('retry');

/**
 * One Code-A1 iteration (docs/code-a1.md, steps 1-9). Every stage reads its inputs from object
 * storage by key and writes its output at a key derived from (run, iteration, stage), so the
 * history holds keys and small summaries whatever the batch size, and a retried stage finds its
 * finished output instead of redoing the work.
 */
export async function codeA1Iteration({ config, iteration, previous }: IterationInput): Promise<IterationRecord> {
  const ref = { runId: config.runId, iteration, storageUri: config.storageUri };
  const options = stageOptions(config);
  const bookkeeping = proxyActivities<OrchestrationActivities>(options.bookkeeping);
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
    settleAll(
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

  const progress: IterationProgress = { iteration, stage: 'sampleBatch', completedStages: [], blocked: null, round: 0 };
  setHandler(iterationProgressQuery, () => progress);
  const results: Partial<Record<Stage, StageResult>> = {};
  const durations: Partial<Record<Stage, number>> = {};

  // Iterations recorded before stages were reported and blocked replay as they ran: a failed stage
  // failed the iteration.
  const reportsStages = patched('stage-reports');
  const budgetOf = attemptBudget(config);
  const parent = workflowInfo().parent;
  let retryRequested = false;
  setHandler(retryStageSignal, () => void (retryRequested = true));
  setHandler(
    iterationRetryUpdate,
    () => {
      retryRequested = true;
      return progress;
    },
    { validator: () => assertBlocked(progress.blocked ?? null, iterationWorkflowId(config.runId, iteration)) },
  );

  /** Tells the run (or, for an iteration started on its own, the search attributes) where this iteration stands. */
  async function report(): Promise<void> {
    if (!reportsStages) return;
    const blocked = progress.blocked ?? null;
    if (!parent) {
      upsertSearchAttributes([
        { key: stageAttribute, value: progress.stage },
        { key: blockedAttribute, value: blocked !== null },
      ]);
      return;
    }
    // Best effort: the run queries nothing back, and a run that is gone has terminated this iteration.
    await getExternalWorkflowHandle(parent.workflowId)
      .signal(stageReportSignal, { iteration, stage: progress.stage, blocked })
      .catch((err) => log.warn('the run did not take the stage report', { error: String(err) }));
  }

  /**
   * Runs a stage; when its activities fail for good (budget used up, or an error no retry can
   * fix) the iteration blocks there, keeping what finished, until `code-a1 retry` runs it again.
   * Returns the milliseconds spent blocked, so stage durations measure work, not waiting.
   */
  async function attempt<T>(name: Stage, run: () => Promise<T>): Promise<{ out: T; blockedMs: number }> {
    let blockedMs = 0;
    for (;;) {
      try {
        return { out: await run(), blockedMs };
      } catch (err) {
        if (!reportsStages || !blocksStage(err)) throw err;
        const since = Date.now();
        progress.blocked = describeBlocked(iteration, name, err, budgetOf, new Date(since));
        log.error('stage blocked: waiting for a retry', { ...progress.blocked });
        setCurrentDetails(blockedLine(progress.blocked));
        retryRequested = false;
        await report();
        await condition(() => retryRequested);
        retryRequested = false;
        progress.blocked = null;
        setCurrentDetails('');
        blockedMs += Date.now() - since;
        await report();
      }
    }
  }

  async function stage<T>(name: Stage, run: () => Promise<T>): Promise<T> {
    progress.stage = name;
    await report();
    const started = Date.now();
    const { out, blockedMs } = await attempt(name, run);
    // Summed: the batch stages run once per sampling round.
    durations[name] = (durations[name] ?? 0) + Date.now() - started - blockedMs;
    progress.completedStages.push(name);
    return out;
  }
  async function keyedStage(name: Stage, run: () => Promise<StageResult>): Promise<StageResult> {
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

  /**
   * Steps 1-6 for one batch of problems: round 0 is the iteration's batch; rounds 1.. are the
   * extra batches of dynamic sampling, under keys of their own (keys.roundStage). Round 0 also
   * publishes the policies before sampling from them (the extra rounds sample the same weights).
   * Returns null for an extra round that found no unseen problem left.
   */
  async function sampleRound(round: number): Promise<{ code: StageResult; tests: StageResult; scores: StageResult } | null> {
    const at = round === 0 ? ref : { ...ref, round };
    // The record's stage results are round 0's; the joined scores replace its score (below).
    const keyed = round === 0 ? keyedStage : stage<StageResult>;
    progress.round = round;
    const batch = await keyed('sampleBatch', () =>
      orchestration.sampleBatch({ ...at, dataset: config.dataset, batchSize: algorithm.batchSize, seed: config.seed }),
    );
    if (round > 0 && !batch.summary.problems) return null;
    // Published at the start rather than after training, so that an iteration resumed after a
    // model server restart still samples from the weights it expects.
    if (round === 0) {
      await stage('publishPolicy', () =>
        settleAll(
          (['code', 'test'] as const).map((role) => publishAll(role, base[role])),
        ),
      );
    }
    const code = await keyed('generateCode', () =>
      generating('code', () => llm.generateCode({
        ...at,
        batchKey: batch.key,
        model: config.models.code,
        checkpoint: base.code,
        nCode: algorithm.nCode,
        seed: config.seed,
      })),
    );
    const tests = await keyed('generateTests', () =>
      generating('test', () => llm.generateTests({
        ...at,
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
      ...at,
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
      return orchestration.mergeExecution({ ...at, shards, problems });
    });
    const scores = await keyed('score', () =>
      orchestration.score({ ...at, executionKey: execution.key, mistakeBookKey: previousBook, algorithm }),
    );
    return { code, tests, scores };
  }

  const first = (await sampleRound(0))!;
  let { code, tests, scores } = first;
  // Dynamic sampling: groups whose rewards are all equal train nothing, so while either role has
  // fewer than `minGroups` groups with variance, sample another batch (bounded), and train on all
  // of them. Behind a patch: iterations recorded before it trained on their one batch.
  const sampling = algorithm.dynamicSampling;
  if (patched('dynamic-sampling') && sampling && sampling.maxExtraRounds > 0) {
    const rounds: RoundKeys[] = [{ codeKey: code.key, testsKey: tests.key, scoresKey: scores.key }];
    // A score activity older than these counts cannot say: then no round is added.
    const signal = { code: scores.summary.codeGroupsWithVariance ?? Infinity, test: scores.summary.testGroupsWithVariance ?? Infinity };
    while (rounds.length <= sampling.maxExtraRounds && Math.min(signal.code, signal.test) < sampling.minGroups) {
      const round = await sampleRound(rounds.length);
      if (round === null) break;
      rounds.push({ codeKey: round.code.key, testsKey: round.tests.key, scoresKey: round.scores.key });
      signal.code += round.scores.summary.codeGroupsWithVariance ?? Infinity;
      signal.test += round.scores.summary.testGroupsWithVariance ?? Infinity;
    }
    progress.round = 0;
    if (rounds.length > 1) {
      // The Mistake Book and both policy updates read the joined batch; the iteration's record
      // shows its scores (metrics over every round, and the groups dropped).
      const merged = await stage('score', () => orchestration.mergeRounds({ ...ref, rounds }));
      ({ code, tests, scores } = merged);
    }
    results.score = { ...scores, summary: { ...scores.summary, rounds: rounds.length } };
  }
  await keyedStage('updateMistakeBook', () =>
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
    config.trainer.parallelRoles ? settleAll([update('code'), update('test')]) : [await update('code'), await update('test')],
  );

  // Evaluation every K iterations (off by default). Behind a patch: iterations recorded before it
  // existed carry configs without an `evaluation` section and must replay unchanged.
  if (patched('evaluate-every-k') && evaluationDue(config, iteration)) {
    await keyedStage('evaluate', async () => {
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

/**
 * `count` calls of `run`, at most `limit` in flight, results in index order (deterministic: plain
 * promises). After a failure no new call starts, and the first error is thrown once the calls in
 * flight have ended, so that a retry of the stage never runs beside its own first attempt.
 */
async function boundedAll<T>(count: number, limit: number, run: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < count && !failed) {
      const index = next++;
      try {
        results[index] = await run(index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await settleAll(Array.from({ length: Math.min(limit, count) }, lane));
  return results;
}

/** Promise.all that waits for every promise to settle before throwing the first error (see boundedAll). */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** An Update validator: retrying makes sense only while a stage is blocked. */
export function assertBlocked(blocked: BlockedStage | null, what: string): void {
  if (blocked === null) throw new Error(`${what} is not blocked: nothing to retry`);
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
