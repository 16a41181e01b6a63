import { log } from '@temporalio/activity';
import type { MergeRoundsInput, MergedRounds, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { StorageDeps } from './deps.js';
import type { Manifest } from './records.js';
import { InvalidArtifactError, MissingArtifactError } from './artifact-errors.js';
import type { ObjectStore } from './storage/index.js';
import { getJson, putJsonOnce } from './storage/index.js';
import { manifestKey, writeManifest } from './storage/manifest.js';
import { buildScoresRecord, iterationMetrics } from './scoring/index.js';
import { readScoresRecord } from './scoring/stage-input.js';
import type { ScoresRecord } from './scoring/index.js';

/**
 * Joins the rounds of dynamic sampling (workflows/iteration.ts) into the one batch that the
 * Mistake Book update and both policy updates read: the rollout manifests list every round's
 * shards, and the scores record holds every round's problems and advantages, its metrics
 * recomputed over all of them. Written once under `iter-<n>/merged/`, so a retry returns the
 * same keys; the rounds' own outputs stay where they are.
 */
export function createMergeRoundsActivity({ openStore }: StorageDeps) {
  async function mergeRounds(input: MergeRoundsInput): Promise<MergedRounds> {
    const store = openStore(input.storageUri);
    const at = (name: string) => keys.stage(input.runId, input.iteration, `merged/${name}`);
    const code = await mergeManifests(store, input.rounds.map((r) => r.codeKey), manifestKey(at('code')));
    const tests = await mergeManifests(store, input.rounds.map((r) => r.testsKey), manifestKey(at('tests')));

    const records: ScoresRecord[] = [];
    for (const { scoresKey } of input.rounds) records.push(await readScoresRecord(store, scoresKey, input.runId, input.iteration));
    const problems = records.flatMap((r) => r.problems);
    const seen = new Set<string>();
    for (const p of problems) {
      // Rollouts and Mistake Book pages are keyed by question: a problem in two rounds would train twice and write its page twice.
      if (seen.has(p.questionId)) throw new InvalidArtifactError(`problem '${p.questionId}' was sampled in two rounds of iteration ${input.iteration}`);
      seen.add(p.questionId);
    }
    const metrics = iterationMetrics(problems);
    const summary = { ...metrics, rounds: input.rounds.length };
    const key = at('scores.json');
    const merged = await putJsonOnce(store, key, buildScoresRecord(input.runId, input.iteration, records[0]!.options, problems, summary));
    log.info('sampling rounds merged', { runId: input.runId, iteration: input.iteration, rounds: input.rounds.length, problems: metrics.problems, codeGroupsDropped: metrics.codeGroupsDropped, testGroupsDropped: metrics.testGroupsDropped });
    return { code, tests, scores: { key, summary: { ...merged.summary } } };
  }
  return { mergeRounds };
}

/** One manifest listing the shards of `sources` in order, written once at `key`. */
async function mergeManifests(store: ObjectStore, sources: string[], key: string): Promise<StageResult> {
  const shards: string[] = [];
  let count = 0;
  for (const source of sources) {
    const manifest = await getJson<Manifest>(store, source);
    if (manifest === undefined) throw new MissingArtifactError(`rollouts manifest ${store.uri}/${source} is missing`);
    if (!Array.isArray(manifest.shards) || !Number.isInteger(manifest.count)) throw new InvalidArtifactError(`${store.uri}/${source}: expected { shards: string[], count: integer }`);
    shards.push(...manifest.shards);
    count += manifest.count;
  }
  const written = await writeManifest(store, key, { shards, count });
  return { key, summary: { rollouts: written.count, shards: written.shards.length } };
}
