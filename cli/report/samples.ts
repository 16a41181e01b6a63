import { z } from 'zod';
import type { ObjectStore } from '../../activities/storage/index.js';
import { manifestKey } from '../../activities/storage/manifest.js';
import { problemExecutionSchema } from '../../activities/scoring/index.js';
import { InvalidArtifactError, MissingArtifactError } from '../../activities/artifact-errors.js';
import { keys } from '../../workflows/contract.js';

/** One generated assert: the oracle's verdict, and the candidate's outcome when both were valid. */
export interface TestSample {
  /** Canonical text when valid, the model's text otherwise. */
  test: string;
  valid: boolean;
  /** null: not run (an invalid assert, or a candidate that is not valid code). */
  passed: boolean | null;
}

/** One Test LLM response written against the sampled candidate. */
export interface ResponseSample {
  reward: number | null;
  tests: TestSample[];
}

/** A problem of the batch, one of its candidates, and the tests written against that candidate. */
export interface RolloutSample {
  questionId: string;
  description: string;
  candidateIndex: number;
  candidates: number;
  validCode: boolean;
  /** The code extracted from the response; null when it held no code block. */
  code: string | null;
  reward: number | null;
  responses: ResponseSample[];
}

export type IterationSamples = { iteration: number; samples: RolloutSample[] } | { iteration: number; unavailable: string };

export interface SampleOptions {
  /** Iterations to sample, counted back from the last: the report stays readable for long runs. */
  iterations?: number;
  /** Problems per iteration. */
  problems?: number;
}

export const sampleDefaults = { iterations: 5, problems: 2 } satisfies Required<SampleOptions>;

/** Bigger objects are not read: a report must not exhaust memory on a bucket someone filled. */
const maxObjectBytes = 64 * 1024 * 1024;

/**
 * A few rollouts of each of the last iterations, read from their stored artifacts. The choice
 * is deterministic: the first problems of the batch that have a valid candidate (then the first
 * others), each with its first valid candidate (else its first). An iteration whose artifacts are
 * missing or malformed comes back `unavailable` with the reason instead of failing the report.
 */
export async function readRolloutSamples(store: ObjectStore, runId: string, iterations: readonly number[], options: SampleOptions = {}): Promise<IterationSamples[]> {
  const { iterations: last, problems } = { ...sampleDefaults, ...options };
  const chosen = [...new Set(iterations)].sort((a, b) => a - b).slice(-last);
  return Promise.all(
    chosen.map(async (iteration): Promise<IterationSamples> => {
      try {
        return { iteration, samples: await readIteration(new Artifacts(store, runId, iteration), problems) };
      } catch (err) {
        // Whatever went wrong reading one iteration, storage errors included, costs only its samples.
        return { iteration, unavailable: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

const manifestSchema = z.object({ shards: z.array(z.string()) });
const batchSchema = z.object({ problems: z.array(z.object({ questionId: z.string(), description: z.string() })) });
const codeShardSchema = z.array(z.object({ questionId: z.string(), candidateIndex: z.number().int(), code: z.string().nullable() }));
const executionShardSchema = z.array(problemExecutionSchema);
const scoresSchema = z.object({
  problems: z.array(
    z.object({
      questionId: z.string(),
      candidates: z.array(z.object({ rewardA: z.number(), responses: z.array(z.object({ rewardB: z.number() })) })),
    }),
  ),
});

type Execution = z.output<typeof problemExecutionSchema>;

/** One iteration's stored artifacts, each read and checked against the shape the report needs. */
class Artifacts {
  constructor(
    private readonly store: ObjectStore,
    private readonly runId: string,
    readonly iteration: number,
  ) {}

  key(name: string): string {
    return keys.stage(this.runId, this.iteration, name);
  }

  async read<S extends z.ZodType>(key: string, schema: S, what: string): Promise<z.output<S>> {
    const bytes = await this.store.get(key);
    if (bytes === undefined) throw new MissingArtifactError(`${key} is missing`);
    if (bytes.byteLength > maxObjectBytes) throw new InvalidArtifactError(`${key} is larger than ${maxObjectBytes} bytes`);
    let json: unknown;
    try {
      json = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch {
      throw new InvalidArtifactError(`${key} is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new InvalidArtifactError(`${key} is not ${what}`);
    return parsed.data;
  }

  /**
   * The shards of a sharded stage output in order, read one at a time so that a caller that
   * has what it needs stops reading. Shard keys come from storage: only those under the
   * stage's own folder are read.
   */
  async *shards<S extends z.ZodType>(stage: string, schema: S, what: string): AsyncGenerator<z.output<S>> {
    const prefix = this.key(stage);
    const { shards } = await this.read(manifestKey(prefix), manifestSchema, 'a manifest');
    for (const shard of shards) {
      if (!shard.startsWith(`${prefix}/`)) throw new InvalidArtifactError(`${manifestKey(prefix)} lists ${shard} outside ${prefix}/`);
      yield await this.read(shard, schema, what);
    }
  }
}

async function readIteration(artifacts: Artifacts, count: number): Promise<RolloutSample[]> {
  const picked = await pickProblems(artifacts, count);
  if (picked.length === 0) return [];
  const [batch, scores, code] = await Promise.all([
    artifacts.read(artifacts.key('batch.json'), batchSchema, 'a batch'),
    artifacts.read(artifacts.key('scores.json'), scoresSchema, 'a scores record'),
    candidateCode(artifacts, picked),
  ]);
  return picked.map(({ problem, candidateIndex }) => {
    const candidate = problem.candidates[candidateIndex]!;
    const scored = scores.problems.find((p) => p.questionId === problem.questionId)?.candidates[candidateIndex];
    const rollout = code.get(sampleKey(problem.questionId, candidateIndex));
    if (rollout === undefined) throw new MissingArtifactError(`no code rollout ${candidateIndex} of '${problem.questionId}' under ${artifacts.key('code')}/`);
    return {
      questionId: problem.questionId,
      description: batch.problems.find((p) => p.questionId === problem.questionId)?.description ?? '',
      candidateIndex,
      candidates: problem.candidates.length,
      validCode: candidate.valid,
      code: rollout,
      reward: scored?.rewardA ?? null,
      responses: candidate.responses.map((response, r) => ({
        reward: scored?.responses[r]?.rewardB ?? null,
        tests: response.asserts.map((a) => ({ test: a.test, valid: a.valid, passed: a.valid && candidate.valid ? (a.passed ?? null) : null })),
      })),
    };
  });
}

interface Chosen {
  problem: Execution;
  candidateIndex: number;
}

/** Execution records come in batch order; the first `count` with a valid candidate, topped up with the first others. */
async function pickProblems(artifacts: Artifacts, count: number): Promise<Chosen[]> {
  const withValid: Array<Chosen & { order: number }> = [];
  const others: Array<Chosen & { order: number }> = [];
  let order = 0;
  for await (const shard of artifacts.shards('execution', executionShardSchema, 'execution records')) {
    for (const problem of shard) {
      const valid = problem.candidates.findIndex((c) => c.valid);
      if (valid >= 0) withValid.push({ problem, candidateIndex: valid, order });
      else if (others.length < count) others.push({ problem, candidateIndex: 0, order });
      order++;
    }
    if (withValid.length >= count) break;
  }
  return [...withValid, ...others]
    .slice(0, count)
    .sort((a, b) => a.order - b.order)
    .map(({ problem, candidateIndex }) => ({ problem, candidateIndex }));
}

const sampleKey = (questionId: string, candidateIndex: number) => JSON.stringify([questionId, candidateIndex]);

/** The picked candidates' code, reading code shards only until every one is found. */
async function candidateCode(artifacts: Artifacts, picked: readonly Chosen[]): Promise<Map<string, string | null>> {
  const wanted = new Set(picked.map((p) => sampleKey(p.problem.questionId, p.candidateIndex)));
  const found = new Map<string, string | null>();
  for await (const shard of artifacts.shards('code', codeShardSchema, 'code rollouts')) {
    for (const rollout of shard) {
      const key = sampleKey(rollout.questionId, rollout.candidateIndex);
      if (wanted.has(key)) found.set(key, rollout.code);
    }
    if (found.size === wanted.size) break;
  }
  return found;
}
