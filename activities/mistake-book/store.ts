import type { ObjectStore } from '../storage/index.js';
import { keys } from '../../workflows/contract.js';
import type { MistakeBook, ProblemBook } from './book.js';
import { emptyBook } from './book.js';
import type { BookIndex, BookSize } from './shards.js';
import { DEFAULT_SHARD_COUNT, SHARDED_FORMAT, SHARD_HASH, checkShardCount, parseIndex, parseObject, parseShard, serializeIndex, serializeShard, shardKey, shardOf } from './shards.js';
import { parseSingleObjectBook } from './single-object.js';
import { ArtifactConflictError, InvalidArtifactError, MissingArtifactError } from '../artifact-errors.js';
import { createLimiter } from '../llm/concurrency.js';

/**
 * Object-store calls in flight per load or save: a whole-book load reads one object per shard
 * (4,096 by default), more than a file store's open files or an S3 client's sockets should carry at once.
 */
const STORE_CONCURRENCY = 64;

/** A stored version as read: a sharded index, or a whole book in the single-object format. */
type Version = { index: BookIndex } | { book: MistakeBook };

export interface SaveOptions {
  /** Shards of a new book (iteration 0, or the first sharded version of an older run); a sharded book keeps its own. */
  shardCount?: number;
}

export interface SavedBook {
  key: string;
  /** False when a retry found this exact version already stored. */
  created: boolean;
  size: BookSize;
}

/**
 * The book an iteration starts from: the version the previous iteration saved, in either
 * format. Iteration 0 starts empty. Any other missing version is an error: an empty book there
 * would silently throw away everything the run has learned (the reference's failure on a
 * resume elsewhere).
 */
export async function loadBook(store: ObjectStore, runId: string, iteration: number): Promise<MistakeBook> {
  if (iteration === 0) return emptyBook();
  const version = await readVersion(store, runId, iteration - 1);
  if ('book' in version) return version.book;
  const book = emptyBook();
  for (const { pages } of (await readShards(store, runId, version.index, Object.keys(version.index.shards))).values()) {
    for (const [id, page] of pages) book.problems.set(id, page);
  }
  if (book.problems.size !== version.index.size.problems) {
    throw new InvalidArtifactError(`${where(store, keys.mistakeBook(runId, iteration - 1))}: size.problems is ${version.index.size.problems}, but its shards hold ${book.problems.size}`);
  }
  return book;
}

/**
 * The pages of `questionIds` in the book iteration `iteration` starts from, reading only the
 * shards they fall in; problems the book does not hold are absent from the result.
 */
export async function loadProblems(store: ObjectStore, runId: string, iteration: number, questionIds: Iterable<string>): Promise<MistakeBook> {
  const wanted = new Set(questionIds);
  const book = emptyBook();
  if (iteration === 0) return book;
  const version = await readVersion(store, runId, iteration - 1);
  if ('book' in version) {
    for (const id of wanted) {
      const page = version.book.problems.get(id);
      if (page) book.problems.set(id, page);
    }
    return book;
  }
  const { shards, shardCount } = version.index;
  const needed = new Set([...wanted].map((id) => shardOf(id, shardCount)).filter((shard) => shard in shards));
  for (const { pages } of (await readShards(store, runId, version.index, needed)).values()) {
    for (const [id, page] of pages) if (wanted.has(id)) book.problems.set(id, page);
  }
  return book;
}

/**
 * Saves a whole book as iteration `iteration`'s version, every shard written anew. Write-once
 * like every version: a retry that computed the same book finds the same bytes and succeeds;
 * different bytes mean the inputs or the code changed under a finished iteration, and the
 * stored version is kept and the call fails with ArtifactConflictError.
 */
export async function saveBook(store: ObjectStore, runId: string, iteration: number, book: MistakeBook, options: SaveOptions = {}): Promise<SavedBook> {
  const shardCount = options.shardCount ?? DEFAULT_SHARD_COUNT;
  checkShardCount(shardCount);
  const index = newIndex(runId, iteration, shardCount);
  const byShard = new Map<string, Map<string, ProblemBook>>();
  for (const [id, page] of book.problems) {
    const shard = shardOf(id, shardCount);
    if (!byShard.has(shard)) byShard.set(shard, new Map());
    byShard.get(shard)!.set(id, page);
  }
  const writes: [string, Buffer][] = [];
  for (const [shard, pages] of byShard) {
    index.shards[shard] = shardKey(runId, iteration, shard);
    writes.push([index.shards[shard], serializeShard(runId, shard, shardCount, pages)]);
    addSize(index.size, pages, 1);
  }
  return commit(store, index, writes);
}

/**
 * Saves iteration `iteration`'s version as the previous one with `pages` applied (a page
 * replaces the problem's, null removes the problem). Reads and writes only the shards of those
 * problems; the index points every other shard at the object it already had. A previous
 * version in the single-object format is read whole and its successor written in shards.
 * Write-once and exactly-once as `saveBook`.
 */
export async function updateBook(
  store: ObjectStore,
  runId: string,
  iteration: number,
  pages: ReadonlyMap<string, ProblemBook | null>,
  options: SaveOptions = {},
): Promise<SavedBook> {
  const previous: Version = iteration === 0 ? { book: emptyBook() } : await readVersion(store, runId, iteration - 1);
  if ('book' in previous) {
    const book = previous.book;
    for (const [id, page] of pages) {
      if (page) book.problems.set(id, page);
      else book.problems.delete(id);
    }
    return saveBook(store, runId, iteration, book, options);
  }
  const { shardCount } = previous.index;
  const index: BookIndex = { ...newIndex(runId, iteration, shardCount), shards: { ...previous.index.shards }, size: { ...previous.index.size } };
  const touched = new Map<string, [string, ProblemBook | null][]>();
  for (const [id, page] of pages) {
    const shard = shardOf(id, shardCount);
    if (!touched.has(shard)) touched.set(shard, []);
    touched.get(shard)!.push([id, page]);
  }
  const before = await readShards(store, runId, previous.index, [...touched.keys()].filter((shard) => shard in index.shards));
  const writes: [string, Buffer][] = [];
  for (const [shard, changes] of touched) {
    const old = before.get(shard);
    const shardPages = new Map(old?.pages);
    if (old) addSize(index.size, old.pages, -1);
    for (const [id, page] of changes) {
      if (page) shardPages.set(id, page);
      else shardPages.delete(id);
    }
    addSize(index.size, shardPages, 1);
    if (shardPages.size === 0) {
      delete index.shards[shard];
      continue;
    }
    const bytes = serializeShard(runId, shard, shardCount, shardPages);
    // A shard the changes left as it was keeps its object: nothing to write.
    if (old && bytes.equals(old.bytes)) continue;
    index.shards[shard] = shardKey(runId, iteration, shard);
    writes.push([index.shards[shard], bytes]);
  }
  return commit(store, index, writes);
}

function newIndex(runId: string, iteration: number, shardCount: number): BookIndex {
  return { format: SHARDED_FORMAT, iteration, runId, shardCount, shardHash: SHARD_HASH, shards: {}, size: { problems: 0, retired: 0, tests: 0 } };
}

function addSize(size: BookSize, pages: Map<string, ProblemBook>, sign: 1 | -1): void {
  for (const page of pages.values()) {
    size.problems += sign;
    size.tests += sign * page.tests.length;
    if (page.retired) size.retired += sign;
  }
}

/**
 * Shards first, the index last: an index exists only once every object it names does, so a
 * reader never sees a half-written version and a retry after a crash finishes the same one.
 */
async function commit(store: ObjectStore, index: BookIndex, writes: [string, Buffer][]): Promise<SavedBook> {
  const limit = createLimiter(STORE_CONCURRENCY);
  await Promise.all(writes.map(([key, bytes]) => limit(() => putOnce(store, key, bytes))));
  const key = keys.mistakeBook(index.runId, index.iteration);
  const created = await putOnce(store, key, serializeIndex(index));
  return { key, created, size: index.size };
}

async function putOnce(store: ObjectStore, key: string, bytes: Buffer): Promise<boolean> {
  if (await store.putIfAbsent(key, bytes)) return true;
  const existing = await store.get(key);
  if (existing === undefined || !bytes.equals(existing)) {
    throw new ArtifactConflictError(`Mistake Book ${where(store, key)} already exists with different content; it is never overwritten`);
  }
  return false;
}

async function readVersion(store: ObjectStore, runId: string, iteration: number): Promise<Version> {
  const key = keys.mistakeBook(runId, iteration);
  const bytes = await store.get(key);
  if (bytes === undefined) {
    throw new MissingArtifactError(`Mistake Book ${where(store, key)} is missing: iteration ${iteration + 1} needs the version iteration ${iteration} saved`);
  }
  const raw = parseObject(bytes, where(store, key));
  const expected = { runId, iteration };
  if ((raw as { format?: unknown }).format === SHARDED_FORMAT) return { index: parseIndex(raw, where(store, key), expected) };
  if ('schemaVersion' in raw) return { book: parseSingleObjectBook(raw, where(store, key), expected) };
  throw new InvalidArtifactError(`${where(store, key)}: format: expected ${JSON.stringify(SHARDED_FORMAT)} (or a schemaVersion, for a book saved before sharding)`);
}

interface StoredShard {
  pages: Map<string, ProblemBook>;
  bytes: Uint8Array;
}

/** The named shards of an index, read in parallel. */
async function readShards(store: ObjectStore, runId: string, index: BookIndex, shards: Iterable<string>): Promise<Map<string, StoredShard>> {
  const limit = createLimiter(STORE_CONCURRENCY);
  const read = await Promise.all(
    [...shards].map((shard) =>
      limit(async (): Promise<[string, StoredShard]> => {
        const key = index.shards[shard]!;
        const bytes = await store.get(key);
        if (bytes === undefined) throw new MissingArtifactError(`Mistake Book shard ${where(store, key)}, listed by iteration ${index.iteration}'s index, is missing`);
        return [shard, { pages: parseShard(bytes, where(store, key), { runId, shard, shardCount: index.shardCount }), bytes }];
      }),
    ),
  );
  return new Map(read);
}

function where(store: ObjectStore, key: string): string {
  return `${store.uri}/${key}`;
}
