import { heartbeat, log } from '@temporalio/activity';
import { ConfigError } from '../config/run-config.js';
import type { RunMutationTestsInput, TestGenerationReport } from '../workflows/evaluate.js';
import { evaluationKeys } from '../workflows/evaluate.js';
import type { StorageDeps } from './deps.js';
import { InvalidArtifactError, MissingArtifactError } from './artifact-errors.js';
import type { TestResponseSample } from './evaluate-sample-tests.js';
import { GoldenRunner } from './evaluation/golden-runner.js';
import { mutantSet, type MutantSet } from './evaluation/mutants.js';
import { evaluationProblems } from './evaluation/problems.js';
import { scoreTestResponses, testGenerationScores, type TestResponsesScore } from './evaluation/test-scores.js';
import type { Sandbox } from './sandbox/index.js';
import { getJson, putJsonOnce } from './storage/index.js';
import { readManifest, shardKey } from './storage/manifest.js';

export interface MutationTestsDeps extends StorageDeps {
  sandbox: Sandbox;
  heartbeatMs?: number;
}

/**
 * The scoring stage of a Test LLM evaluation. Per responses shard: the mutant sets of its
 * problems (stored once, so the set a problem is scored against never changes between attempts
 * or evaluations of the same dataset), then each problem's k responses scored against them.
 * Ends with pass@k, mut@k and Mul, overall and per benchmark, in `test-report.json`.
 */
export function createRunMutationTestsActivity(deps: MutationTestsDeps) {
  async function runMutationTests({ config, responsesKey }: RunMutationTestsInput): Promise<TestGenerationReport> {
    const tests = config.tests;
    if (!tests) throw new ConfigError('the evaluation config has no tests section: there is nothing to score');
    const store = deps.openStore(config.storageUri);
    const reportKey = evaluationKeys.testReport(config.evalId);
    const stored = await getJson<TestGenerationReport>(store, reportKey);
    if (stored) return stored;

    const manifest = await readManifest(store, responsesKey);
    if (!manifest) throw new MissingArtifactError(`test responses manifest ${store.uri}/${responsesKey} is missing`);
    const problems = new Map((await evaluationProblems(config, deps.openStore)).map((p) => [p.questionId, p]));
    const runner = new GoldenRunner(deps.sandbox, config.timeLimits, config.memoryMb);
    const progress = { shardsDone: 0, shards: manifest.shards.length };
    heartbeat(progress);
    // Mutants that loop run to the golden time limit, longer than a heartbeat interval.
    const timer = setInterval(() => heartbeat(progress), deps.heartbeatMs ?? 5_000);
    const scores: (TestResponsesScore & { dataSource: string })[] = [];
    try {
      for (const [index, key] of manifest.shards.entries()) {
        let shard = await getJson<TestResponsesScore[]>(store, shardKey(evaluationKeys.mutation(config.evalId), index));
        if (!shard) {
          const responses = await getJson<TestResponseSample[]>(store, key);
          if (!Array.isArray(responses)) throw new InvalidArtifactError(`${store.uri}/${key}: expected a JSON array of test responses`);
          const byProblem = new Map<string, string[]>();
          for (const r of responses) byProblem.set(r.questionId, [...(byProblem.get(r.questionId) ?? []), r.response]);
          const mutantsKey = shardKey(evaluationKeys.mutants(config.evalId), index);
          const mutantSets =
            (await getJson<MutantSet[]>(store, mutantsKey)) ??
            (await putJsonOnce(
              store,
              mutantsKey,
              await Promise.all([...byProblem.keys()].map((id) => mutantSet(runner, deps.sandbox, problemOf(id), tests.mutantLimit))),
            ));
          const mutantsOf = new Map(mutantSets.map((set) => [set.questionId, set.mutants]));
          const scored = await Promise.all(
            [...byProblem].map(([id, texts]) =>
              scoreTestResponses(deps.sandbox, problemOf(id), texts, mutantsOf.get(id) ?? [], {
                perTestTimeoutMs: tests.perTestTimeoutMs,
                testsPerResponse: tests.testsPerResponse,
              }),
            ),
          );
          shard = await putJsonOnce(store, shardKey(evaluationKeys.mutation(config.evalId), index), scored);
        }
        for (const score of shard) scores.push({ ...score, dataSource: problemOf(score.questionId).dataSource });
        progress.shardsDone++;
        heartbeat(progress);
      }
    } finally {
      clearInterval(timer);
    }

    const sources = [...new Set(scores.map((s) => s.dataSource))];
    const report: TestGenerationReport = {
      reportKey,
      responsesPerProblem: tests.responses,
      overall: testGenerationScores(scores),
      benchmarks: sources.map((dataSource) => ({ dataSource, ...testGenerationScores(scores.filter((s) => s.dataSource === dataSource)) })),
    };
    log.info('test generation scored', { evalId: config.evalId, ...report.overall });
    return putJsonOnce(store, reportKey, report);

    function problemOf(questionId: string) {
      const problem = problems.get(questionId);
      if (!problem) throw new InvalidArtifactError(`test responses of ${questionId}: the evaluation's dataset has no such problem with golden tests`);
      return problem;
    }
  }
  return { runMutationTests };
}
