import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { UsageError } from '../../command.js';
import { parseCommandLine, positiveInt } from '../exec.js';
import { DEFAULT_SHARD_COUNT, applyChanges, emptyBook, loadBook, loadProblems, saveBook, serializeSingleObjectBook, shardOf, sortEntries, updateBook } from '../../../activities/mistake-book/index.js';
import type { MistakeBook, ProblemBook } from '../../../activities/mistake-book/index.js';
import { keys } from '../../../workflows/contract.js';
import { openStore } from '../../../activities/storage/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';

export interface MistakeBookBenchOptions {
  /** Problems in the book; 10,000 is a KodCode-sized training set. */
  problems: number;
  /** Tests per problem: the paper's cap, 64, reached on every problem (the worst case). */
  testsPerProblem: number;
  /** Problems one iteration touches: the paper's batch of 256. */
  touched: number;
  /** Shard counts to measure; the first is the one `ratio` reports. */
  shardCounts: number[];
  /** Iterations measured per format; medians are reported. */
  rounds: number;
  /** Where to write; a temporary file:// store, removed afterwards, when absent. */
  store?: ObjectStore;
}

export interface MistakeBookBench {
  benchmark: 'mistake-book';
  problems: number;
  testsPerProblem: number;
  touched: number;
  rounds: number;
  store: string;
  /** The format before sharding: the whole book serialized and written every iteration. */
  singleObject: { writeMs: number; updateMs: number; readBatchMs: number; objectsWritten: number; bytesWritten: number };
  sharded: { shardCount: number; updateMs: number; readBatchMs: number; loadWholeMs: number; shardsTouched: number; objectsWritten: number; bytesWritten: number }[];
  /** Sharded update (reads included) over the single object's write alone, at the first shard count: the figure. */
  ratio: number;
  /** Sharded update over the single-object update (load whole, apply, write whole). */
  updateRatio: number;
  bytesRatio: number;
}

export const defaultMistakeBookBench: MistakeBookBenchOptions = { problems: 10_000, testsPerProblem: 64, touched: 256, shardCounts: [DEFAULT_SHARD_COUNT, 256, 1024], rounds: 3 };

/**
 * One iteration's Mistake Book write at paper scale, in the same process and store: the
 * single-object format (today's update: parse the whole previous book, apply the batch, write the
 * whole book) against the sharded one (read the index and the touched shards, write those shards
 * and a new index), and the score stage's read of the batch's pages in each. Each round is the
 * next iteration of the same run, so shards untouched by earlier rounds stay where they were.
 */
export async function measureMistakeBook(options: MistakeBookBenchOptions): Promise<MistakeBookBench> {
  const { problems, testsPerProblem, touched, rounds } = options;
  if (touched > problems) throw new RangeError(`touched (${touched}) exceeds problems (${problems})`);
  const temporary = options.store ? undefined : await mkdtemp(join(tmpdir(), 'code-a1-bench-book-'));
  const store = options.store ?? openStore(pathToFileURL(temporary!).href);
  const bench = `bench-book-${Date.now().toString(36)}`;
  try {
    const book = paperBook(problems, testsPerProblem);
    const current: MistakeBook = { problems: new Map(book.problems) };
    const batches = Array.from({ length: rounds }, (_, r) => batchOf(current, touched, r));

    const single = { write: [] as number[], update: [] as number[], read: [] as number[], bytes: 0 };
    const singleRun = `${bench}-single`;
    await store.putIfAbsent(keys.mistakeBook(singleRun, 0), serializeSingleObjectBook(singleRun, 0, book));
    for (let r = 0; r < rounds; r++) {
      const iteration = r + 1;
      single.read.push(await timed(() => loadProblems(store, singleRun, iteration, batches[r]!.keys())));
      let write = 0;
      single.update.push(
        await timed(async () => {
          const previous = await loadBook(store, singleRun, iteration);
          for (const [id, page] of batches[r]!) previous.problems.set(id, page);
          write = await timed(async () => {
            const bytes = Buffer.from(serializeSingleObjectBook(singleRun, iteration, previous), 'utf8');
            await store.putIfAbsent(keys.mistakeBook(singleRun, iteration), bytes);
            single.bytes = bytes.length;
          });
        }),
      );
      single.write.push(write);
    }

    const sharded = [];
    for (const shardCount of options.shardCounts) {
      const run = `${bench}-sharded-${shardCount}`;
      await saveBook(store, run, 0, book, { shardCount });
      const counting = countingWrites(store);
      const update: number[] = [];
      const read: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const iteration = r + 1;
        read.push(await timed(() => loadProblems(store, run, iteration, batches[r]!.keys())));
        counting.reset();
        update.push(await timed(() => updateBook(counting.store, run, iteration, batches[r]!)));
      }
      const loadWholeMs = await timed(() => loadBook(store, run, rounds + 1));
      sharded.push({
        shardCount,
        updateMs: median(update),
        readBatchMs: median(read),
        loadWholeMs: round(loadWholeMs),
        shardsTouched: new Set([...batches[rounds - 1]!.keys()].map((id) => shardOf(id, shardCount))).size,
        objectsWritten: counting.objects,
        bytesWritten: counting.bytes,
      });
    }

    const singleObject = { writeMs: median(single.write), updateMs: median(single.update), readBatchMs: median(single.read), objectsWritten: 1, bytesWritten: single.bytes };
    const first = sharded[0]!;
    return {
      benchmark: 'mistake-book',
      problems,
      testsPerProblem,
      touched,
      rounds,
      store: options.store ? store.uri : 'file:// (temporary)',
      singleObject,
      sharded,
      ratio: round(first.updateMs / singleObject.writeMs, 3),
      updateRatio: round(first.updateMs / singleObject.updateMs, 3),
      bytesRatio: round(first.bytesWritten / singleObject.bytesWritten, 4),
    };
  } finally {
    if (temporary) await rm(temporary, { recursive: true, force: true });
  }
}

/** Every problem at the cap, asserts about as long as a KodCode-style canonical test (≈75 characters). */
function paperBook(problems: number, testsPerProblem: number): MistakeBook {
  const book = emptyBook();
  for (let p = 0; p < problems; p++) {
    const tests = Array.from({ length: testsPerProblem }, (_, i) => ({ test: `assert count_valid_pairs([${i}, ${p % 97}, -3, 'x'], limit=${i * 7}) == ${p + i}`, frequency: 1 + (i % 5) }));
    book.problems.set(`kodcode-${p}`, { tests: sortEntries(tests), cleanStreak: 0, retired: false });
  }
  return book;
}

/**
 * `touched` problems drawn without replacement by a fixed generator (different per round), each
 * page updated as a scored iteration would on top of the rounds before: its top test passed
 * once, a new failing test added (its text sorts first among frequency 1, so the cap evicts
 * another test and every touched page really changes).
 */
function batchOf(current: MistakeBook, touched: number, round: number): Map<string, ProblemBook> {
  const ids = [...current.problems.keys()];
  let state = (0x9e3779b9 * (round + 1)) >>> 0;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
  for (let i = 0; i < touched; i++) {
    const j = i + (next() % (ids.length - i));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const batch = new Map<string, ProblemBook>();
  for (const id of ids.slice(0, touched)) {
    const page = current.problems.get(id)!;
    const changes = { decrements: page.tests.slice(0, 1).map((e) => e.test), increments: [`assert count_valid_pairs([-${round}], limit=0) == 0`], clean: false };
    batch.set(id, applyChanges(page, changes, { mistakeBookCap: page.tests.length || 1, blacklistAfter: 0 }));
  }
  for (const [id, page] of batch) current.problems.set(id, page);
  return batch;
}

function countingWrites(store: ObjectStore) {
  const counted = {
    objects: 0,
    bytes: 0,
    reset: () => void ((counted.objects = 0), (counted.bytes = 0)),
    store: Object.assign(Object.create(store) as ObjectStore, {
      putIfAbsent: async (key: string, body: Uint8Array | string) => {
        const created = await store.putIfAbsent(key, body);
        if (created) (counted.objects++, (counted.bytes += typeof body === 'string' ? Buffer.byteLength(body) : body.length));
        return created;
      },
    }),
  };
  return counted;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return round(sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2);
}

function round(value: number, digits = 1): number {
  return Number(value.toFixed(digits));
}

const bench: Command = {
  summary:
    'bench mistake-book [--problems 10000] [--tests 64] [--touched 256] [--shards 4096,256,1024] [--rounds 3]: one iteration\'s Mistake Book update, single object vs sharded',
  async run(argv) {
    const { values } = parseCommandLine(() =>
      parseArgs({
        args: argv,
        options: { problems: { type: 'string' }, tests: { type: 'string' }, touched: { type: 'string' }, shards: { type: 'string' }, rounds: { type: 'string' } },
        strict: true,
        allowPositionals: false,
      }),
    );
    const d = defaultMistakeBookBench;
    const options: MistakeBookBenchOptions = {
      problems: positiveInt(values.problems, '--problems', d.problems),
      testsPerProblem: positiveInt(values.tests, '--tests', d.testsPerProblem),
      touched: positiveInt(values.touched, '--touched', d.touched),
      shardCounts: values.shards ? values.shards.split(',').map((s) => positiveInt(s, '--shards', 0)) : d.shardCounts,
      rounds: positiveInt(values.rounds, '--rounds', d.rounds),
    };
    if (options.touched > options.problems) throw new UsageError('--touched must not exceed --problems');
    console.log(JSON.stringify(await measureMistakeBook(options)));
    return 0;
  },
};
export default bench;
