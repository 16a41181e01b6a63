import type { ObjectStore } from '../storage/index.js';
import { keys } from '../../workflows/contract.js';
import type { BookEntry, MistakeBook, ProblemBook } from './book.js';
import { compareEntries, emptyBook } from './book.js';
import { compareText } from './text-order.js';
import { ArtifactConflictError, InvalidArtifactError, MissingArtifactError } from '../artifact-errors.js';

/** Bump when the stored shape changes; loading refuses versions it does not know. */
export const BOOK_SCHEMA_VERSION = 1;

/**
 * The stored object, one per iteration: `runs/<runId>/mistake-book/iter-<n>.json`.
 * Problems are an array sorted by questionId (an object keyed by id would put numeric-looking
 * ids first in JSON.stringify and break canonical order); each page's tests are
 * `[text, frequency]` pairs in book order, which parse about a third faster than objects at
 * 10,000 problems × 64 tests.
 */
export interface StoredBook {
  iteration: number;
  problems: StoredPage[];
  runId: string;
  schemaVersion: typeof BOOK_SCHEMA_VERSION;
}

export interface StoredPage {
  cleanStreak: number;
  questionId: string;
  retired: boolean;
  tests: [string, number][];
}

/**
 * Canonical JSON (sorted keys, no whitespace) of the book. Objects are built with their keys in
 * sorted order so that the native JSON.stringify emits canonical bytes; the generic
 * canonicalJson is several times slower on 640,000 entries. A test checks the two agree.
 */
export function serializeBook(runId: string, iteration: number, book: MistakeBook): string {
  const ids = [...book.problems.keys()].sort(compareText);
  const problems = ids.map((questionId): StoredPage => {
    const page = book.problems.get(questionId)!;
    return {
      cleanStreak: page.cleanStreak,
      questionId,
      retired: page.retired,
      tests: page.tests.map((e): [string, number] => [e.test, e.frequency]),
    };
  });
  const stored: StoredBook = { iteration, problems, runId, schemaVersion: BOOK_SCHEMA_VERSION };
  return JSON.stringify(stored);
}

/**
 * Parses and checks a stored book; `where` names it in errors, and `expected` (when given) must
 * match the run and iteration recorded inside, so a book copied under the wrong key is caught.
 */
export function parseBook(text: string, where: string, expected?: { runId: string; iteration: number }): MistakeBook {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidArtifactError(`${where}: not JSON`, { cause: err });
  }
  const fail = (field: string, wanted: string): never => {
    throw new InvalidArtifactError(`${where}: ${field}: expected ${wanted}`);
  };
  if (typeof raw !== 'object' || raw === null) return fail('(root)', 'an object');
  const stored = raw as Partial<StoredBook>;
  if (stored.schemaVersion !== BOOK_SCHEMA_VERSION) return fail('schemaVersion', `${BOOK_SCHEMA_VERSION}, got ${String(stored.schemaVersion)}`);
  if (expected && stored.runId !== expected.runId) return fail('runId', `${JSON.stringify(expected.runId)}, got ${JSON.stringify(stored.runId)}`);
  if (expected && stored.iteration !== expected.iteration) return fail('iteration', `${expected.iteration}, got ${String(stored.iteration)}`);
  if (!Array.isArray(stored.problems)) return fail('problems', 'an array');
  const book = emptyBook();
  for (let p = 0; p < stored.problems.length; p++) {
    const field = `problems[${p}]`;
    const entry: unknown = stored.problems[p];
    if (typeof entry !== 'object' || entry === null) return fail(field, 'an object');
    const page = entry as Partial<StoredPage>;
    const id = page.questionId;
    if (typeof id !== 'string') return fail(`${field}.questionId`, 'a string');
    if (book.problems.has(id)) return fail(`${field}.questionId`, `a questionId not seen before, got ${JSON.stringify(id)} again`);
    if (!Array.isArray(page.tests)) return fail(`${field}.tests`, 'an array');
    if (!Number.isInteger(page.cleanStreak) || page.cleanStreak! < 0) return fail(`${field}.cleanStreak`, 'a non-negative integer');
    if (typeof page.retired !== 'boolean') return fail(`${field}.retired`, 'a boolean');
    const tests: BookEntry[] = new Array(page.tests.length);
    for (let i = 0; i < page.tests.length; i++) {
      const pair = page.tests[i];
      if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !Number.isInteger(pair[1]) || pair[1] < 1) {
        return fail(`${field}.tests[${i}]`, '[test text, frequency >= 1]');
      }
      tests[i] = { test: pair[0], frequency: pair[1] };
      if (i > 0 && compareEntries(tests[i - 1]!, tests[i]!) >= 0) return fail(`${field}.tests[${i}]`, 'book order without duplicates');
    }
    book.problems.set(id, { tests, cleanStreak: page.cleanStreak!, retired: page.retired } satisfies ProblemBook);
  }
  return book;
}

/**
 * The book an iteration starts from: the version the previous iteration saved. Iteration 0
 * starts empty. Any other missing version is an error: an empty book there would silently
 * throw away everything the run has learned (the reference's failure on a resume elsewhere).
 */
export async function loadBook(store: ObjectStore, runId: string, iteration: number): Promise<MistakeBook> {
  if (iteration === 0) return emptyBook();
  const key = keys.mistakeBook(runId, iteration - 1);
  const bytes = await store.get(key);
  if (bytes === undefined) {
    throw new MissingArtifactError(`Mistake Book ${store.uri}/${key} is missing: iteration ${iteration} needs the version iteration ${iteration - 1} saved`);
  }
  return parseBook(Buffer.from(bytes).toString('utf8'), `${store.uri}/${key}`, { runId, iteration: iteration - 1 });
}

/**
 * Saves the book an iteration produced, write-once. A retry that recomputed the same book finds
 * the same bytes and succeeds; different bytes mean the inputs or the code changed under a
 * finished iteration, and the stored version is kept and the call fails.
 */
export async function saveBook(store: ObjectStore, runId: string, iteration: number, book: MistakeBook): Promise<{ key: string; created: boolean }> {
  const key = keys.mistakeBook(runId, iteration);
  const bytes = Buffer.from(serializeBook(runId, iteration, book), 'utf8');
  if (await store.putIfAbsent(key, bytes)) return { key, created: true };
  const existing = await store.get(key);
  if (existing === undefined || !bytes.equals(existing)) {
    throw new ArtifactConflictError(`Mistake Book ${store.uri}/${key} already exists with different content; it is never overwritten`);
  }
  return { key, created: false };
}
