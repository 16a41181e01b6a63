import { createHash } from 'node:crypto';
import { keys } from '../../workflows/contract.js';
import type { ProblemBook } from './book.js';
import { canonicalJson } from './canonical-json.js';
import type { StoredPage } from './pages.js';
import { parsePages, storedPages } from './pages.js';
import { InvalidArtifactError } from '../artifact-errors.js';

/**
 * The sharded format. `iter-<n>.json` is a small index naming, for each shard that holds
 * problems, the object with its pages as of iteration n. An iteration writes new objects only
 * for the shards whose problems it touched; the others keep pointing at the objects an earlier
 * iteration wrote. Every object is write-once.
 */
export const SHARDED_FORMAT = 'sharded-v1';
const SHARD_FORMAT = 'mistake-book-shard-v1';

/**
 * How a problem finds its shard: the first 4 bytes of SHA-256 of its questionId (UTF-8), read
 * big-endian, modulo the shard count. Recorded in every index so that a change of rule is a
 * new name, never a silent reshuffle.
 */
export const SHARD_HASH = 'sha256-u32be-mod';

/**
 * Shards of a new book; the count stays with the book for its whole run. An iteration over the
 * paper's batch of 256 problems touches about 250 of 4,096 shards, so it rewrites about 6% of the
 * book; at 256 shards it would touch about 160 of them and rewrite 63%. `bench mistake-book`
 * measured, at 10,000 problems × 64 tests: 4.3 MB written instead of 44 MB, the update in about
 * a quarter of the single object's write alone. The price is paid by whole-book loads (one read
 * per shard), which no stage needs.
 */
export const DEFAULT_SHARD_COUNT = 4096;
export const MAX_SHARD_COUNT = 65_536;

export interface BookIndex {
  format: typeof SHARDED_FORMAT;
  iteration: number;
  runId: string;
  shardCount: number;
  shardHash: typeof SHARD_HASH;
  /** Shard name → key of the object holding that shard's pages; shards without problems are absent. */
  shards: Record<string, string>;
  size: BookSize;
}

export interface BookSize {
  problems: number;
  retired: number;
  tests: number;
}

interface StoredShard {
  format: typeof SHARD_FORMAT;
  problems: StoredPage[];
  runId: string;
  shard: string;
  shardCount: number;
}

/** Lower-case hex, as wide as the largest shard of the book: 256 shards are `00`..`ff`. */
export function shardName(index: number, shardCount: number): string {
  return index.toString(16).padStart((shardCount - 1).toString(16).length, '0');
}

export function shardOf(questionId: string, shardCount: number): string {
  const digest = createHash('sha256').update(questionId, 'utf8').digest();
  return shardName(digest.readUInt32BE(0) % shardCount, shardCount);
}

/** `runs/<runId>/mistake-book/iter-<n>/shard-<shard>.json`, beside the index it belongs to. */
export function shardKey(runId: string, iteration: number, shard: string): string {
  return keys.mistakeBook(runId, iteration).replace(/\.json$/, `/shard-${shard}.json`);
}

export function checkShardCount(shardCount: number): void {
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > MAX_SHARD_COUNT) {
    throw new RangeError(`shardCount must be an integer from 1 to ${MAX_SHARD_COUNT}, got ${shardCount}`);
  }
}

/** Canonical bytes of one shard, keys in sorted order (see `StoredPage`). */
export function serializeShard(runId: string, shard: string, shardCount: number, pages: Map<string, ProblemBook>): Buffer {
  const stored: StoredShard = { format: SHARD_FORMAT, problems: storedPages(pages), runId, shard, shardCount };
  return Buffer.from(JSON.stringify(stored), 'utf8');
}

/** Pages of a stored shard, checked to belong to the run and shard the index says they do. */
export function parseShard(bytes: Uint8Array, where: string, expected: { runId: string; shard: string; shardCount: number }): Map<string, ProblemBook> {
  const raw = parseObject(bytes, where) as Partial<StoredShard>;
  for (const field of ['format', 'runId', 'shard', 'shardCount'] as const) {
    const wanted = field === 'format' ? SHARD_FORMAT : expected[field];
    if (raw[field] !== wanted) throw new InvalidArtifactError(`${where}: ${field}: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(raw[field])}`);
  }
  const pages = new Map<string, ProblemBook>();
  parsePages(raw.problems, where, pages);
  for (const id of pages.keys()) {
    if (shardOf(id, expected.shardCount) !== expected.shard) throw new InvalidArtifactError(`${where}: problem ${JSON.stringify(id)} belongs to shard ${shardOf(id, expected.shardCount)}`);
  }
  return pages;
}

export function serializeIndex(index: BookIndex): Buffer {
  return Buffer.from(canonicalJson(index), 'utf8');
}

/** Checks a parsed index against the run and iteration its key names. */
export function parseIndex(raw: object, where: string, expected: { runId: string; iteration: number }): BookIndex {
  const fail = (field: string, wanted: string, got: unknown): never => {
    throw new InvalidArtifactError(`${where}: ${field}: expected ${wanted}, got ${JSON.stringify(got)}`);
  };
  const index = raw as Partial<BookIndex>;
  if (index.runId !== expected.runId) return fail('runId', JSON.stringify(expected.runId), index.runId);
  if (index.iteration !== expected.iteration) return fail('iteration', String(expected.iteration), index.iteration);
  if (index.shardHash !== SHARD_HASH) return fail('shardHash', JSON.stringify(SHARD_HASH), index.shardHash);
  const count = index.shardCount;
  if (!Number.isInteger(count) || count! < 1 || count! > MAX_SHARD_COUNT) return fail('shardCount', `an integer from 1 to ${MAX_SHARD_COUNT}`, count);
  const shards = index.shards;
  if (typeof shards !== 'object' || shards === null || Array.isArray(shards)) return fail('shards', 'an object', shards);
  const width = shardName(count! - 1, count!).length;
  for (const [shard, key] of Object.entries(shards)) {
    if (shard.length !== width || !/^[0-9a-f]+$/.test(shard) || parseInt(shard, 16) >= count!) return fail('shards', `shard names ${shardName(0, count!)}..${shardName(count! - 1, count!)}`, shard);
    if (typeof key !== 'string' || key === '') return fail(`shards.${shard}`, 'an object key', key);
  }
  const size = index.size;
  if (typeof size !== 'object' || size === null || !(['problems', 'retired', 'tests'] as const).every((f) => Number.isInteger(size[f]) && size[f] >= 0)) {
    return fail('size', '{ problems, retired, tests } as non-negative integers', size);
  }
  return index as BookIndex;
}

export function parseObject(bytes: Uint8Array, where: string): object {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new InvalidArtifactError(`${where}: not JSON`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidArtifactError(`${where}: (root): expected an object`);
  return raw;
}
