/**
 * Shared set-up for the scoring, Mistake Book, activity and CLI tests: record builders with
 * the paper's defaults, and the object stores the round-trip tests run against.
 */
import { testS3Store } from '../../support/s3.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AssertExecution, CandidateExecution, ProblemExecution, ResponseExecution, ScoringOptions } from '../../../activities/scoring/index.js';
import type { BookEntry } from '../../../activities/mistake-book/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { openStore } from '../../../activities/storage/index.js';
import { algorithmSchema } from '../../../config/run-config.js';
import type { RunConfig } from '../../../config/run-config.js';

/** The paper's configuration (docs/code-a1.md): alpha 0.5, T 8, top-K 8, updateN 1, cap 64. */
export const paperOptions: ScoringOptions = {
  alpha: 0.5,
  testsPerResponse: 8,
  mistakeBookTopK: 8,
  updateN: 1,
  mistakeBookCap: 64,
  dropZeroVarianceGroups: true,
  blacklistAfter: 0,
};

export const options = (overrides: Partial<ScoringOptions> = {}): ScoringOptions => ({ ...paperOptions, ...overrides });

export const pass = (test: string): AssertExecution => ({ test, valid: true, passed: true });
export const fail = (test: string): AssertExecution => ({ test, valid: true, passed: false });
export const invalid = (test: string): AssertExecution => ({ test, valid: false });

export const response = (asserts: AssertExecution[], nonprintableRatio = 0): ResponseExecution => ({ nonprintableRatio, asserts });

export const candidate = (responses: ResponseExecution[], mistakeBookPassed: boolean[] = [], valid = true): CandidateExecution => ({
  valid,
  mistakeBookPassed,
  responses,
});

export const problem = (candidates: CandidateExecution[], mistakeBook: BookEntry[] = [], questionId = 'q1'): ProblemExecution => ({
  questionId,
  mistakeBook,
  candidates,
});

export const entry = (test: string, frequency: number): BookEntry => ({ test, frequency });

/** `assert f(i) == i` style canonical tests, distinct per index. */
export const t = (i: number) => `assert f(${i}) == ${i * 2}`;

/** A file:// store in a fresh temporary directory, removed by `close`. */
export async function fileStore(): Promise<{ store: ObjectStore; uri: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'code-a1-scoring-'));
  const uri = pathToFileURL(dir).href;
  return { store: openStore(uri), uri, close: () => rm(dir, { recursive: true, force: true }) };
}

/** An S3 store on the test runner's local S3 server, under `prefix`. */
export function s3Store(prefix: string): ObjectStore {
  return testS3Store(prefix);
}

/** Floating-point equality to 1e-9, reporting both numbers. */
export function near(actual: number, expected: number, what = 'value'): void {
  if (!(Math.abs(actual - expected) <= 1e-9)) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}

/** A full `algorithm` section of the run config (what activity inputs carry), with overrides. */
export const algorithm = (overrides: Partial<RunConfig['algorithm']> = {}): RunConfig['algorithm'] => algorithmSchema.parse(overrides);
