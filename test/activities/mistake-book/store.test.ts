import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { ArtifactConflictError, InvalidArtifactError, MissingArtifactError, emptyBook, loadBook, saveBook, serializeBook, sortEntries } from '../../../activities/mistake-book/index.js';
import type { MistakeBook } from '../../../activities/mistake-book/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { keys } from '../../../workflows/contract.js';
import { entry, fileStore, s3Store } from '../scoring/fixtures.js';

function sampleBook(): MistakeBook {
  const book = emptyBook();
  book.problems.set('q2', { tests: [entry('assert f(2) == 4', 3), entry('assert f("é😀") == 1', 1)], cleanStreak: 0, retired: false });
  book.problems.set('q1', { tests: [], cleanStreak: 2, retired: true });
  return book;
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers) await close();
});

const backends: { name: string; open(): Promise<ObjectStore> }[] = [
  {
    name: 'file://',
    async open() {
      const { store, close } = await fileStore();
      closers.push(close);
      return store;
    },
  },
  { name: 's3://', open: async () => s3Store(`book-test-${randomUUID()}`) },
];

for (const backend of backends) {
  describe(`the Mistake Book in ${backend.name} storage`, () => {
    it('starts iteration 0 from an empty book without reading anything', async () => {
      const store = await backend.open();
      assert.equal((await loadBook(store, 'run', 0)).problems.size, 0);
    });

    it('round-trips a saved iteration into the next one, and a retried save of the same book succeeds with the same bytes', async () => {
      const store = await backend.open();
      assert.deepEqual(await saveBook(store, 'run', 0, sampleBook()), { key: keys.mistakeBook('run', 0), created: true });
      const stored = await store.get(keys.mistakeBook('run', 0));
      assert.deepEqual(await saveBook(store, 'run', 0, sampleBook()), { key: keys.mistakeBook('run', 0), created: false });
      assert.deepEqual(await store.get(keys.mistakeBook('run', 0)), stored);
      assert.deepEqual(await loadBook(store, 'run', 1), sampleBook());
    });

    it('refuses to overwrite a saved iteration with a different book and keeps the stored one', async () => {
      const store = await backend.open();
      await saveBook(store, 'run', 0, sampleBook());
      await assert.rejects(saveBook(store, 'run', 0, emptyBook()), ArtifactConflictError);
      assert.deepEqual(await loadBook(store, 'run', 1), sampleBook());
    });

    it('fails with MissingArtifactError when the previous version is missing', async () => {
      const store = await backend.open();
      await assert.rejects(loadBook(store, 'run', 5), (err: unknown) => err instanceof MissingArtifactError && err.name === 'MissingArtifactError' && /iter-4\.json/.test(err.message));
    });

    it('rejects a stored book of another schema version or another iteration', async () => {
      const store = await backend.open();
      await store.put(keys.mistakeBook('run', 0), JSON.stringify({ schemaVersion: 99, runId: 'run', iteration: 0, problems: [] }));
      await assert.rejects(loadBook(store, 'run', 1), (err: unknown) => err instanceof InvalidArtifactError && /schemaVersion/.test(err.message));
      await store.put(keys.mistakeBook('run', 1), serializeBook('run', 7, sampleBook()));
      await assert.rejects(loadBook(store, 'run', 2), (err: unknown) => err instanceof InvalidArtifactError && /iteration/.test(err.message));
    });
  });
}

describe('saving any book', () => {
  it('is idempotent and loads back what was saved', async () => {
    const { store, close } = await fileStore();
    closers.push(close);
    const page = fc.record({
      tests: fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.integer({ min: 1, max: 9 })), { selector: ([test]) => test, maxLength: 6 }).map((pairs) => sortEntries(pairs.map(([test, frequency]) => entry(test, frequency)))),
      cleanStreak: fc.nat(5),
      retired: fc.boolean(),
    }).map((p) => ({ ...p }));
    let iteration = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), page, { maxKeys: 5 }), async (pages) => {
        const book: MistakeBook = { problems: new Map(Object.entries(pages)) };
        const n = iteration++;
        await saveBook(store, 'prop', n, book);
        const bytes = await store.get(keys.mistakeBook('prop', n));
        assert.equal((await saveBook(store, 'prop', n, book)).created, false);
        assert.deepEqual(await store.get(keys.mistakeBook('prop', n)), bytes);
        assert.deepEqual(await loadBook(store, 'prop', n + 1), book);
      }),
      { numRuns: 50 },
    );
  });
});

describe('a paper-scale book', () => {
  it('of 10,000 problems × 64 tests saves and loads whole, every problem with its tests in order', async () => {
    const { store, close } = await fileStore();
    closers.push(close);
    const book = emptyBook();
    for (let p = 0; p < 10_000; p++) {
      // About the length of a canonical assert on a KodCode-style problem (≈75 characters).
      const tests = Array.from({ length: 64 }, (_, i) => entry(`assert count_valid_pairs([${i}, ${p % 97}, -3, 'x'], limit=${i * 7}) == ${p + i}`, 1 + (i % 5)));
      book.problems.set(`kodcode-${p}`, { tests: sortEntries(tests), cleanStreak: 0, retired: false });
    }
    // Timings belong in a benchmark, not here: a loaded machine makes any bound flaky.
    await saveBook(store, 'scale', 0, book);
    const loaded = await loadBook(store, 'scale', 1);
    assert.equal(loaded.problems.size, 10_000);
    assert.deepEqual(loaded.problems.get('kodcode-9999'), book.problems.get('kodcode-9999'));
  });
});
