import { heartbeat, log } from '@temporalio/activity';
import type { EvaluationReport, RunGoldenTestsInput } from '../workflows/evaluate.js';
import { evaluationKeys } from '../workflows/evaluate.js';
import type { StorageDeps } from './deps.js';
import { InvalidArtifactError, MissingArtifactError } from './artifact-errors.js';
import { GoldenRunner, type GoldenProblem, type GoldenRun, type ReferenceRun } from './evaluation/golden-runner.js';
import type { GoldenOutcome } from './evaluation/golden-program.js';
import { scoreBenchmarks, type ProblemCounts } from './evaluation/pass-at-k.js';
import { evaluationProblems, solutionProgram, type EvaluationSample } from './evaluation/problems.js';
import { createLimiter } from './llm/index.js';
import type { Sandbox } from './sandbox/index.js';
import { getJson, putJsonOnce } from './storage/index.js';
import { readManifest, shardKey } from './storage/manifest.js';

export interface GoldenTestsDeps extends StorageDeps {
  sandbox: Sandbox;
  heartbeatMs?: number;
}

/** One sample's result, stored per samples shard. */
export interface SampleResult {
  questionId: string;
  sampleIndex: number;
  outcome: GoldenOutcome | 'no_code';
  durationMs: number;
  timeLimitMs: number;
  detail: string;
}

/** What the stage stores for samples shard i: the results and the references it measured. */
interface GoldenShard {
  results: SampleResult[];
  references: ReferenceRun[];
}

/** `report.json`: the workflow's result plus the per-problem counts it was computed from. */
export interface StoredEvaluationReport extends EvaluationReport {
  problems: ProblemCounts[];
}

/**
 * The execution stage of a Code LLM evaluation: every sample against its problem's golden tests,
 * one results shard per samples shard, each written once, so a retried attempt runs only the
 * shards that are missing. Ends with per-benchmark avg@n and pass@k in `report.json`.
 */
export function createRunGoldenTestsActivity(deps: GoldenTestsDeps) {
  async function runGoldenTests({ config, samplesKey }: RunGoldenTestsInput): Promise<EvaluationReport> {
    const store = deps.openStore(config.storageUri);
    const reportKey = evaluationKeys.report(config.evalId);
    const stored = await getJson<StoredEvaluationReport>(store, reportKey);
    if (stored) return withoutProblems(stored);

    const manifest = await readManifest(store, samplesKey);
    if (!manifest) throw new MissingArtifactError(`samples manifest ${store.uri}/${samplesKey} is missing`);
    const problems = new Map((await evaluationProblems(config, deps.openStore)).map((p) => [p.questionId, p]));
    const runner = new GoldenRunner(deps.sandbox, config.timeLimits, config.memoryMb);
    const limit = createLimiter(deps.sandbox.concurrency);
    const prefix = evaluationKeys.golden(config.evalId);

    const progress = { shardsDone: 0, shards: manifest.shards.length };
    heartbeat(progress);
    // One program may run for minutes (4 x a slow reference), longer than a heartbeat interval.
    const timer = setInterval(() => heartbeat(progress), deps.heartbeatMs ?? 5_000);
    const counts = new Map<string, ProblemCounts>();
    const failedReferences = new Set<string>();
    try {
      for (const [index, key] of manifest.shards.entries()) {
        const resultsKey = shardKey(prefix, index);
        let shard = await getJson<GoldenShard>(store, resultsKey);
        if (!shard) {
          const samples = await getJson<EvaluationSample[]>(store, key);
          if (!Array.isArray(samples)) throw new InvalidArtifactError(`${store.uri}/${key}: expected a JSON array of samples`);
          const results = await Promise.all(samples.map((sample) => limit(() => runSample(runner, problems, sample))));
          const questionIds = [...new Set(samples.map((s) => s.questionId))];
          const references = await Promise.all(questionIds.map((id) => runner.reference(problems.get(id)!)));
          shard = await putJsonOnce<GoldenShard>(store, resultsKey, { results, references });
        }
        for (const result of shard.results) {
          const problem = problems.get(result.questionId)!;
          const entry = counts.get(result.questionId) ?? { questionId: result.questionId, dataSource: problem.dataSource, samples: 0, passed: 0 };
          entry.samples++;
          if (result.outcome === 'pass') entry.passed++;
          counts.set(result.questionId, entry);
        }
        for (const ref of shard.references) if (ref.outcome !== 'pass') failedReferences.add(ref.questionId);
        progress.shardsDone++;
        heartbeat(progress);
      }
    } finally {
      clearInterval(timer);
    }

    const problemCounts = [...counts.values()];
    const report: StoredEvaluationReport = {
      evalId: config.evalId,
      reportKey,
      samplesKey,
      benchmarks: scoreBenchmarks(problemCounts, config.ks),
      failedReferences: [...failedReferences],
      problems: problemCounts,
    };
    log.info('evaluation scored', { evalId: config.evalId, benchmarks: report.benchmarks.length, failedReferences: report.failedReferences.length });
    return withoutProblems(await putJsonOnce(store, reportKey, report));
  }

  return { runGoldenTests };
}

async function runSample(runner: GoldenRunner, problems: Map<string, GoldenProblem>, sample: EvaluationSample): Promise<SampleResult> {
  const problem = problems.get(sample.questionId);
  if (!problem) throw new InvalidArtifactError(`sample of ${sample.questionId}: the evaluation's dataset has no such problem with golden tests`);
  const base = { questionId: sample.questionId, sampleIndex: sample.sampleIndex };
  if (sample.code === null) return { ...base, outcome: 'no_code', durationMs: 0, timeLimitMs: 0, detail: 'the response held no code' };
  const run: GoldenRun = await runner.run(problem, solutionProgram(problem, sample.code));
  return { ...base, ...run };
}

/** The workflow's result stays small: per-problem counts stay in storage. */
function withoutProblems({ problems: _problems, ...report }: StoredEvaluationReport): EvaluationReport {
  return report;
}
