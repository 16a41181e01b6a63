import { ApplicationFailure } from '@temporalio/common';
import { algorithmSchema, formatIssues } from '../../config/run-config.js';
import { keys, nonRetryableErrors } from '../../workflows/contract.js';
import { ArtifactError, InvalidArtifactError, MissingArtifactError } from '../mistake-book/index.js';
import type { ObjectStore } from '../storage/index.js';
import { getJson } from '../storage/index.js';
import { SCORES_SCHEMA_VERSION } from './scores-record.js';
import type { ScoresRecord } from './scores-record.js';
import type { ScoringOptions } from './types.js';

/** Checks shared by the score and updateMistakeBook stages; failures here are never retried. */

/** Known failures become non-retryable ApplicationFailures with the contract's type; the cause is kept. */
export function nonRetryable(err: unknown): unknown {
  if (err instanceof ArtifactError) return ApplicationFailure.create({ message: err.message, type: err.type, nonRetryable: true, cause: err });
  return err;
}

/** The run config's algorithm section, checked again because workflow input is only JSON. */
export function scoringOptions(algorithm: unknown): ScoringOptions {
  const parsed = algorithmSchema.safeParse(algorithm);
  if (!parsed.success) throw ApplicationFailure.nonRetryable(`invalid algorithm config: ${formatIssues(parsed.error).join('; ')}`, nonRetryableErrors.config);
  return parsed.data;
}

/** The workflow's key for the previous book must be the one this iteration reads, or the run's history and storage disagree. */
export function checkPreviousBookKey(runId: string, iteration: number, key: string | null, field: string): void {
  const expected = iteration === 0 ? null : keys.mistakeBook(runId, iteration - 1);
  if (key !== null && key !== expected) {
    throw ApplicationFailure.nonRetryable(`${field} is '${key}', but iteration ${iteration} reads '${expected}'`, nonRetryableErrors.config);
  }
}


/** The scores record at `key`, which must be of this run and iteration and of the current schema. */
export async function readScoresRecord(store: ObjectStore, key: string, runId: string, iteration: number): Promise<ScoresRecord> {
  const scores = await getJson<ScoresRecord>(store, key);
  if (scores === undefined) throw new MissingArtifactError(`scores ${store.uri}/${key} are missing`);
  if (scores.schemaVersion !== SCORES_SCHEMA_VERSION || scores.runId !== runId || scores.iteration !== iteration || !Array.isArray(scores.problems)) {
    throw new InvalidArtifactError(`${store.uri}/${key}: expected scores of schema ${SCORES_SCHEMA_VERSION} for run '${runId}' iteration ${iteration}`);
  }
  return scores;
}
