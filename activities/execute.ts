import { Context, heartbeat, log } from '@temporalio/activity';
import type { ExecuteInput, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { StorageDeps } from './deps.js';
import type { CodeRollout, Problem, TestRollout } from './records.js';
import type { BatchRecord } from './sample-batch.js';
import type { Sandbox } from './sandbox/index.js';
import type { ProblemExecution } from './scoring/index.js';
import { loadBook, topK } from './mistake-book/index.js';
import { MissingArtifactError } from './artifact-errors.js';
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
    const prefix = keys.stage(input.runId, input.iteration, 'execution');
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
    const book = await loadBook(store, input.runId, input.iteration);

    const shards: string[] = [];
    const cancelled = Context.current().cancellationSignal;
    const none = (questionId: string): ProblemRollouts => ({ questionId, candidates: [], responses: new Map() });
    for (let start = 0, index = 0; start < batch.problems.length; start += problemsPerShard, index++) {
      const key = shardKey(prefix, index);
      shards.push(key);
      // Shards are written once: a retried attempt skips every shard a previous attempt finished.
      if (!(await store.exists(key))) {
        const problems = batch.problems.slice(start, start + problemsPerShard);
        const records = await Promise.all(
          problems.map((p) => executeProblem(p, rollouts.get(p.questionId) ?? none(p.questionId), book.problems.get(p.questionId)?.tests ?? [], input)),
        );
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

  return { execute };
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
  return {
    ...s,
    invalidCodeRate: s.candidates ? 1 - s.validCandidates / s.candidates : 0,
    validAssertRatio: s.asserts ? s.validAsserts / s.asserts : 0,
  };
}
