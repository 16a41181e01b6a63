import { z } from 'zod';
import type { ObjectStore } from '../../activities/storage/index.js';
import { getJson } from '../../activities/storage/index.js';
import { InvalidArtifactError } from '../../activities/artifact-errors.js';
import { formatIssues } from '../../config/run-config.js';
import type { IterationRecord } from '../../workflows/contract.js';
import { keys } from '../../workflows/contract.js';

/**
 * An iteration record as stored, checked before anything is drawn from it: the report reads a
 * bucket that other programs can write to. Metric values may be null (JSON's NaN) or missing;
 * the charts leave those out.
 */
const storedRecordSchema = z.object({
  runId: z.string(),
  iteration: z.number().int().nonnegative(),
  mistakeBookKey: z.string(),
  checkpoints: z.object({ code: z.string(), test: z.string() }),
  metrics: z.record(z.string(), z.number().nullable().transform((v) => v ?? Number.NaN)),
});

/** Every iteration record of a run, by iteration; empty when the run has none. Throws InvalidArtifactError for a malformed one. */
export async function readIterationRecords(store: ObjectStore, runId: string): Promise<IterationRecord[]> {
  const listed = await store.list(keys.iterationRecords(runId));
  // Read together: a long run has thousands of small records, and the S3 client pools its sockets.
  const records = await Promise.all(listed.map((key) => readRecord(store, key)));
  return records.sort((a, b) => a.iteration - b.iteration);
}

async function readRecord(store: ObjectStore, key: string): Promise<IterationRecord> {
  let stored: unknown;
  try {
    stored = await getJson(store, key);
  } catch (err) {
    if (err instanceof SyntaxError) throw new InvalidArtifactError(`${store.uri}/${key} is not JSON`, { cause: err });
    throw err;
  }
  const parsed = storedRecordSchema.safeParse(stored);
  if (!parsed.success) throw new InvalidArtifactError(`${store.uri}/${key} is not an iteration record: ${formatIssues(parsed.error).join('; ')}`);
  return parsed.data;
}
