import { compareText } from './text-order.js';

/** One Mistake Book test: its canonical text (expected value from the reference solution) and frequency. */
export interface BookEntry {
  test: string;
  frequency: number;
}

/** One problem's page of the Mistake Book. */
export interface ProblemBook {
  /** Sorted: frequency descending, then test text ascending (code point order). Frequencies >= 1. */
  tests: BookEntry[];
  /** Consecutive iterations, up to the last one that scored the problem, in which every valid candidate passed everything. */
  cleanStreak: number;
  /** Retired by the blacklist: batch sampling skips it. */
  retired: boolean;
}

export interface MistakeBook {
  problems: Map<string, ProblemBook>;
}

export interface BookOptions {
  /** Tests kept per problem; lowest frequency evicted first. */
  mistakeBookCap: number;
  /** Retire after this many clean iterations in a row; 0 = never. */
  blacklistAfter: number;
}

/** What one iteration did to a problem's page: texts with multiplicity, and whether it was clean. */
export interface BookChanges {
  /** One element per (valid candidate, top-K test it passed). */
  decrements: string[];
  /** One element per (valid candidate, counted valid generated test it failed). */
  increments: string[];
  /** At least one valid candidate, and every valid candidate passed every test it was given. */
  clean: boolean;
}

export function emptyBook(): MistakeBook {
  return { problems: new Map() };
}

export function emptyProblemBook(): ProblemBook {
  return { tests: [], cleanStreak: 0, retired: false };
}

export function compareEntries(a: BookEntry, b: BookEntry): number {
  return b.frequency - a.frequency || compareText(a.test, b.test);
}

export function sortEntries(entries: readonly BookEntry[]): BookEntry[] {
  return [...entries].sort(compareEntries);
}

/** The tests replayed against every candidate: top-K by frequency, ties by text ascending. */
export function topK(entries: readonly BookEntry[], k: number): BookEntry[] {
  return sortEntries(entries).slice(0, k);
}

/**
 * Applies one iteration to a problem's page (docs/code-a1.md §8): first every decrement
 * (a test reaching 0 is removed), then every increment (an absent test starts at 1), then the
 * cap. Decrementing first means a test that the book held at 1, that one candidate passed and
 * another failed, ends at 1 as a fresh entry instead of at 1 by cancellation: same number,
 * and the order never depends on which candidate came first.
 */
export function applyChanges(before: ProblemBook, changes: BookChanges, options: BookOptions): ProblemBook {
  const counts = new Map<string, number>(before.tests.map((e) => [e.test, e.frequency]));
  for (const test of changes.decrements) {
    const frequency = counts.get(test);
    if (frequency === undefined) continue;
    if (frequency <= 1) counts.delete(test);
    else counts.set(test, frequency - 1);
  }
  for (const test of changes.increments) counts.set(test, (counts.get(test) ?? 0) + 1);
  const tests = [...counts].map(([test, frequency]) => ({ test, frequency }));
  const cleanStreak = changes.clean ? before.cleanStreak + 1 : 0;
  return {
    tests: tests.sort(compareEntries).slice(0, options.mistakeBookCap),
    cleanStreak,
    retired: before.retired || (options.blacklistAfter > 0 && cleanStreak >= options.blacklistAfter),
  };
}

export function retiredProblems(book: MistakeBook): string[] {
  return [...book.problems].filter(([, page]) => page.retired).map(([id]) => id).sort(compareText);
}

export function bookSize(book: MistakeBook): { problems: number; tests: number; retired: number } {
  let tests = 0;
  let retired = 0;
  for (const page of book.problems.values()) {
    tests += page.tests.length;
    if (page.retired) retired++;
  }
  return { problems: book.problems.size, tests, retired };
}
