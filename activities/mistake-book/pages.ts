import type { BookEntry, ProblemBook } from './book.js';
import { compareEntries } from './book.js';
import { compareText } from './text-order.js';
import { InvalidArtifactError } from '../artifact-errors.js';

/**
 * One problem's page as stored, in both the single-object and the sharded format. Keys are
 * declared in sorted order so that JSON.stringify of a page built by `storedPage` is canonical;
 * tests are `[text, frequency]` pairs in book order, which parse about a third faster than
 * objects at 10,000 problems × 64 tests.
 */
export interface StoredPage {
  cleanStreak: number;
  questionId: string;
  retired: boolean;
  tests: [string, number][];
}

export function storedPage(questionId: string, page: ProblemBook): StoredPage {
  return {
    cleanStreak: page.cleanStreak,
    questionId,
    retired: page.retired,
    tests: page.tests.map((e): [string, number] => [e.test, e.frequency]),
  };
}

/**
 * Pages sorted by questionId: an array rather than an object keyed by id, because
 * JSON.stringify would put numeric-looking ids first and break canonical order.
 */
export function storedPages(pages: Iterable<[string, ProblemBook]>): StoredPage[] {
  return [...pages].sort(([a], [b]) => compareText(a, b)).map(([id, page]) => storedPage(id, page));
}

/** Checks stored pages and adds them to `into`; `where` names the object in errors. */
export function parsePages(raw: unknown, where: string, into: Map<string, ProblemBook>): void {
  const fail = (field: string, wanted: string): never => {
    throw new InvalidArtifactError(`${where}: ${field}: expected ${wanted}`);
  };
  if (!Array.isArray(raw)) return fail('problems', 'an array');
  for (let p = 0; p < raw.length; p++) {
    const field = `problems[${p}]`;
    const entry: unknown = raw[p];
    if (typeof entry !== 'object' || entry === null) return fail(field, 'an object');
    const page = entry as Partial<StoredPage>;
    const id = page.questionId;
    if (typeof id !== 'string') return fail(`${field}.questionId`, 'a string');
    if (into.has(id)) return fail(`${field}.questionId`, `a questionId not seen before, got ${JSON.stringify(id)} again`);
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
    into.set(id, { tests, cleanStreak: page.cleanStreak!, retired: page.retired } satisfies ProblemBook);
  }
}
