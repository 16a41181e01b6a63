import type { MistakeBook } from './book.js';
import { emptyBook } from './book.js';
import type { StoredPage } from './pages.js';
import { parsePages, storedPages } from './pages.js';
import { InvalidArtifactError } from '../artifact-errors.js';

/** The single-object format's version; runs saved before sharding hold books of this version. */
export const BOOK_SCHEMA_VERSION = 1;

/**
 * The format books had before sharding: the whole book in one object per iteration, rewritten
 * every iteration (about 55 MB at 10,000 problems × 64 tests). Still read, so that a run started
 * before sharding continues; no longer written by the stages.
 */
export interface StoredBook {
  iteration: number;
  problems: StoredPage[];
  runId: string;
  schemaVersion: typeof BOOK_SCHEMA_VERSION;
}

/**
 * Canonical JSON (sorted keys, no whitespace) of the book. Objects are built with their keys in
 * sorted order so that the native JSON.stringify emits canonical bytes; the generic
 * canonicalJson is several times slower on 640,000 entries. A test checks the two agree.
 */
export function serializeSingleObjectBook(runId: string, iteration: number, book: MistakeBook): string {
  const stored: StoredBook = { iteration, problems: storedPages(book.problems), runId, schemaVersion: BOOK_SCHEMA_VERSION };
  return JSON.stringify(stored);
}

/**
 * Checks a parsed single-object book; `where` names it in errors, and `expected` must match the
 * run and iteration recorded inside, so a book copied under the wrong key is caught.
 */
export function parseSingleObjectBook(raw: object, where: string, expected: { runId: string; iteration: number }): MistakeBook {
  const fail = (field: string, wanted: string): never => {
    throw new InvalidArtifactError(`${where}: ${field}: expected ${wanted}`);
  };
  const stored = raw as Partial<StoredBook>;
  if (stored.schemaVersion !== BOOK_SCHEMA_VERSION) return fail('schemaVersion', `${BOOK_SCHEMA_VERSION}, got ${String(stored.schemaVersion)}`);
  if (stored.runId !== expected.runId) return fail('runId', `${JSON.stringify(expected.runId)}, got ${JSON.stringify(stored.runId)}`);
  if (stored.iteration !== expected.iteration) return fail('iteration', `${expected.iteration}, got ${String(stored.iteration)}`);
  const book = emptyBook();
  parsePages(stored.problems, where, book.problems);
  return book;
}
