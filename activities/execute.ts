import { Context, heartbeat, log } from '@temporalio/activity';
import type { ExecuteInput, ExecuteShardInput, MergeExecutionInput, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { StorageDeps } from './deps.js';
import type { CodeRollout, Manifest, Problem, TestRollout } from './records.js';
import type { BatchRecord } from './sample-batch.js';
import type { Sandbox } from './sandbox/index.js';
import type { ProblemExecution } from './scoring/index.js';
import { loadProblems, topK } from './mistake-book/index.js';
import { InvalidArtifactError, MissingArtifactError } from './artifact-errors.js';
import type { ObjectStore } from './storage/index.js';
import { getJson, putJsonOnce } from './storage/index.js';
import { manifestKey, readManifest, readShardedRecords, shardKey, writeManifest } from './storage/manifest.js';
import type { ProblemRollouts, Verdict } from './execution/assemble.js';
import { candidateExecution, candidateTests, groupRollouts, problemExecution, verdicts } from './execution/assemble.js';

export interface ExecuteDeps extends StorageDeps {
  sandbox: Sandbox;
  /** Problems per stored shard: the unit of progress a retried attempt resumes from. */
  problemsPerShard?: number;
}

/**
 * Steps 4-5: validates every generated assert against the reference (the oracle, in a process of
 * its own) and runs the valid ones plus the Mistake Book's top-K against each candidate, all in
 * the sandbox. Writes shards of `ProblemExecution` (the scoring core's input) and a manifest.
 * Sandbox failures throw, so the attempt is retried; they never become failed tests.
 */
export function createExecuteActivity({ openStore, sandbox, problemsPerShard = 8 }: ExecuteDeps) {
  async function executeProblem(problem: Problem, rollouts: ProblemRollouts, page: ProblemExecution['mistakeBook'], input: ExecuteInput): Promise<ProblemExecution> {
    const limits = { perTestTimeoutMs: input.sandbox.perTestTimeoutMs, defineTimeoutMs: input.sandbox.defineTimeoutMs, memoryMb: input.sandbox.memoryMb };
    const top = topK(page, input.algorithm.mistakeBookTopK);
    const responsesOf = (c: CodeRollout): TestRollout[] => rollouts.responses.get(c.candidateIndex) ?? [];
    const texts = [...new Set([...top.map((e) => e.test), ...rollouts.candidates.flatMap((c) => responsesOf(c).flatMap((r) => r.asserts))])];
    const validation = await sandbox.validateTests({ reference: problem.gtCode, entryPoint: problem.entryPoint, asserts: texts, ...limits });
    if (!validation.referenceValid) log.warn('reference solution does not define', { questionId: problem.questionId, error: validation.referenceError });
    const judged = verdicts(texts, validation.tests);
    const book: Verdict[] = top.map((e) => judged.get(e.test)!);

    const candidates = await Promise.all(
      rollouts.candidates.map(async (c) => {
        const responses = responsesOf(c);
        let run = null;
        if (c.code !== null) {
          const { cases, index } = candidateTests(book, responses, judged);
          run = { result: await sandbox.runTests({ code: c.code, entryPoint: problem.entryPoint, tests: cases, ...limits }), index };
        }
        return candidateExecution(c, book, responses, judged, run);
      }),
    );
    return problemExecution(problem.questionId, page, candidates);
  }

  async function execute(input: ExecuteInput): Promise<StageResult> {
    const store = openStore(input.storageUri);
    const prefix = keys.roundStage(input, 'execution');
    const outKey = manifestKey(prefix);
    const summaryKey = `${prefix}/summary.json`;
    const finished = await readManifest(store, outKey);
    if (finished) return { key: outKey, summary: (await getJson<Record<string, number>>(store, summaryKey)) ?? { problems: finished.count } };

    const batch = await getJson<BatchRecord>(store, input.batchKey);
    if (!batch) throw new MissingArtifactError(`batch ${store.uri}/${input.batchKey} is missing`);
    const rollouts = groupRollouts(
      await readShardedRecords<CodeRollout>(store, input.codeKey),
      await readShardedRecords<TestRollout>(store, input.testsKey),
    );
    const book = await loadProblems(store, input.runId, input.iteration, batch.problems.map((p) => p.questionId));

    const shards: string[] = [];
    const cancelled = Context.current().cancellationSignal;
    for (let start = 0, index = 0; start < batch.problems.length; start += problemsPerShard, index++) {
      const key = shardKey(prefix, index);
      shards.push(key);
      // Shards are written once: a retried attempt skips every shard a previous attempt finished.
      if (!(await store.exists(key))) {
        const problems = batch.problems.slice(start, start + problemsPerShard);
        const records = await Promise.all(problems.map((p) => executeProblem(p, rolloutsOf(rollouts, p), book.problems.get(p.questionId)?.tests ?? [], input)));
        await putJsonOnce(store, key, records);
      }
      heartbeat({ shardsDone: index + 1 });
      if (cancelled.aborted) throw cancelled.reason;
    }
    await writeManifest(store, outKey, { shards, count: batch.problems.length });
    const summary = summarize(await readShardedRecords<ProblemExecution>(store, outKey));
    await putJsonOnce(store, summaryKey, summary);
    log.info('execution finished', { runId: input.runId, iteration: input.iteration, ...summary });
    return { key: outKey, summary };
  }

  /**
   * One shard of the execute stage fanned out by the workflow: problems
   * [shard × problemsPerShard, (shard + 1) × problemsPerShard) of the batch, written once at the
   * shard's key. Reads only the generation shards that hold those problems, so the work per
   * activity stays the same however large the iteration grows. A retried or duplicated attempt
   * finds the shard written and returns it.
   */
  async function executeShard(input: ExecuteShardInput): Promise<StageResult> {
    const store = openStore(input.storageUri);
    const key = shardKey(keys.roundStage(input, 'execution'), input.shard);
    const done = await getJson<ProblemExecution[]>(store, key);
    if (done) return { key, summary: summarize(done) };

    const batch = await getJson<BatchRecord>(store, input.batchKey);
    if (!batch) throw new MissingArtifactError(`batch ${store.uri}/${input.batchKey} is missing`);
    const start = input.shard * input.problemsPerShard;
    const problems = batch.problems.slice(start, start + input.problemsPerShard);
    if (problems.length === 0) throw new InvalidArtifactError(`execution shard ${input.shard} starts past the batch's ${batch.problems.length} problems`);
    const wanted = new Set(problems.map((p) => p.questionId));
    const range = { start, end: start + problems.length };
    const rollouts = groupRollouts(
      await readRecordsOf<CodeRollout>(store, input.codeKey, range, wanted),
      await readRecordsOf<TestRollout>(store, input.testsKey, range, wanted),
    );
    // Only this shard's problems' pages: the shards of a sharded book that hold them.
    const book = await loadProblems(store, input.runId, input.iteration, wanted);

    let finished = 0;
    // Often: the SDK throttles heartbeats to the timeout, and a short timeout must not see a live shard as dead.
    const beat = setInterval(() => heartbeat({ shard: input.shard, problemsDone: finished, problems: problems.length }), 1_000);
    try {
      const records = await Promise.all(
        problems.map(async (p) => {
          const record = await executeProblem(p, rolloutsOf(rollouts, p), book.problems.get(p.questionId)?.tests ?? [], input);
          finished++;
          return record;
        }),
      );
      await putJsonOnce(store, key, records);
      return { key, summary: summarize(records) };
    } finally {
      clearInterval(beat);
    }
  }

  return { execute, executeShard };
}

function rolloutsOf(rollouts: Map<string, ProblemRollouts>, p: Problem): ProblemRollouts {
  return rollouts.get(p.questionId) ?? { questionId: p.questionId, candidates: [], responses: new Map() };
}

/**
 * The records of a generation stage for the batch's problems [range.start, range.end): only the
 * shards that hold them when the manifest says how many problems each shard has, every shard
 * (filtered) for manifests written before it did.
 */
async function readRecordsOf<R extends { questionId: string }>(store: ObjectStore, key: string, range: { start: number; end: number }, wanted: Set<string>): Promise<R[]> {
  const manifest = await getJson<Manifest & { problemsPerShard?: number }>(store, key);
  if (!manifest) throw new MissingArtifactError(`manifest ${store.uri}/${key} is missing`);
  const per = manifest.problemsPerShard;
  const shards = per ? manifest.shards.slice(Math.floor(range.start / per), Math.floor((range.end - 1) / per) + 1) : manifest.shards;
  const records = await Promise.all(
    shards.map(async (shard) => {
      const list = await getJson<R[]>(store, shard);
      if (!list) throw new MissingArtifactError(`shard ${store.uri}/${shard} listed by ${key} is missing`);
      return list.filter((r) => wanted.has(r.questionId));
    }),
  );
  return records.flat();
}

/**
 * The execute stage's manifest and summary from its fanned-out shards (orchestration queue): the
 * shards in batch order, counts summed, rates recomputed from the sums. Idempotent.
 */
export function createMergeExecutionActivity({ openStore }: StorageDeps) {
  return {
    async mergeExecution(input: MergeExecutionInput): Promise<StageResult> {
      const store = openStore(input.storageUri);
      const prefix = keys.roundStage(input, 'execution');
      const key = manifestKey(prefix);
      const summary = mergeSummaries(input.shards.map((s) => s.summary));
      await writeManifest(store, key, { shards: input.shards.map((s) => s.key), count: input.problems });
      await putJsonOnce(store, `${prefix}/summary.json`, summary);
      return { key, summary };
    },
  };
}

export function mergeSummaries(parts: Record<string, number>[]): Record<string, number> {
  const s: Record<string, number> = {};
  for (const part of parts) {
    for (const [name, value] of Object.entries(part)) if (name !== 'invalidCodeRate' && name !== 'validAssertRatio') s[name] = (s[name] ?? 0) + value;
  }
  return withRates(s);
}

/** The stage's rates, from its counts. */
function withRates(s: Record<string, number>): Record<string, number> {
  const candidates = s.candidates ?? 0;
  const asserts = s.asserts ?? 0;
  return { ...s, invalidCodeRate: candidates ? 1 - (s.validCandidates ?? 0) / candidates : 0, validAssertRatio: asserts ? (s.validAsserts ?? 0) / asserts : 0 };
}

/** Small numbers for the iteration's metrics: validity of code and asserts, and sandbox outcomes. */
function summarize(records: ProblemExecution[]): Record<string, number> {
  const s = { problems: records.length, candidates: 0, validCandidates: 0, asserts: 0, validAsserts: 0, testsRun: 0, testsPassed: 0 };
  for (const p of records) {
    for (const c of p.candidates) {
      s.candidates++;
      if (c.valid) {
        s.validCandidates++;
        s.testsRun += c.mistakeBookPassed.length;
        s.testsPassed += c.mistakeBookPassed.filter(Boolean).length;
      }
      for (const r of c.responses) {
        for (const a of r.asserts) {
          s.asserts++;
          if (!a.valid) continue;
          s.validAsserts++;
          if (c.valid) (s.testsRun++, a.passed && s.testsPassed++);
        }
      }
    }
  }
  return withRates(s);
}
