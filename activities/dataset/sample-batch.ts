import { DatasetError } from './dataset-error.js';
import { Xoshiro128 } from './prng.js';

export interface BatchPosition {
  /** The run's seed (run config `seed`). */
  seed: number;
  /** Which batch: any non-negative integer; batch 0 opens the stream. */
  iteration: number;
  /** Problems per batch (Q), at most the number of problems. */
  batchSize: number;
}

/**
 * The problems of one training iteration: deterministic in (seed, iteration, batchSize) and the
 * order of `problems`, and nothing else, so a resumed run, on any worker, samples exactly the
 * batches it would have sampled without the interruption.
 *
 * How: the problems form an endless stream made of epochs, each a fresh seeded shuffle of all
 * N problems, and batch n is stream positions [n*Q, (n+1)*Q). So every problem appears exactly
 * once per epoch, and no problem repeats before every other problem has had its turn. A batch
 * that straddles two epochs would otherwise risk holding a problem twice (from the end of one
 * shuffle and the start of the next); the next epoch's order therefore moves those problems
 * out of its first positions (see `nextEpoch`). No problem ever appears twice in one batch.
 */
export function sampleBatch<T>(problems: readonly T[], position: BatchPosition): T[] {
  return batchIndices(problems.length, position).map((i) => problems[i]!);
}

/** `sampleBatch` as positions into the problem list. */
export function batchIndices(count: number, { seed, iteration, batchSize }: BatchPosition): number[] {
  if (count < 1) throw new DatasetError('cannot sample a batch from a dataset with no problems');
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (batchSize > count) {
    throw new DatasetError(
      `batch size ${batchSize} exceeds the ${count} problems in the dataset; a batch never repeats a problem, so use a batch size of at most ${count}`,
    );
  }
  if (!Number.isSafeInteger(iteration) || iteration < 0) throw new RangeError(`iteration must be a non-negative integer, got ${iteration}`);
  const start = iteration * batchSize;
  if (!Number.isSafeInteger(start + batchSize)) throw new RangeError(`iteration ${iteration} is beyond the sampler's range`);

  const epoch = Math.floor(start / count);
  const offset = start - epoch * count;
  const order = epochOrder(count, batchSize, seed, epoch);
  if (offset + batchSize <= count) return order.slice(offset, offset + batchSize);
  const next = nextEpoch(count, batchSize, seed, epoch + 1, order);
  return [...order.slice(offset), ...next.slice(0, offset + batchSize - count)];
}

/** A uniform shuffle of 0..count-1 (Fisher–Yates), its own PRNG stream per epoch. */
function shuffled(count: number, seed: number, epoch: number): number[] {
  const rng = Xoshiro128.seeded(seed, epoch);
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * The order of `epoch`, given the order of the epoch before it. The batch that straddles their
 * boundary takes the last `carried` problems of the previous epoch and the first
 * `batchSize - carried` of this one; those first positions are filled with the earliest
 * problems of this epoch's shuffle that are not among the carried ones, and the rest follow in
 * shuffle order.
 */
function nextEpoch(count: number, batchSize: number, seed: number, epoch: number, previous: readonly number[]): number[] {
  const order = shuffled(count, seed, epoch);
  const carried = (epoch * count) % batchSize;
  if (carried === 0) return order;
  const tail = new Set(previous.slice(count - carried));
  const headLength = batchSize - carried;
  const head: number[] = [];
  const rest: number[] = [];
  for (const i of order) (head.length < headLength && !tail.has(i) ? head : rest).push(i);
  return [...head, ...rest];
}

/**
 * The order of `epoch`. Each epoch's order depends on the previous one's tail, and so in
 * general on the whole chain from epoch 0. But `nextEpoch` only rearranges positions below
 * batchSize, and a tail is shorter than batchSize, so with count >= 2 * batchSize every tail is
 * the plain shuffle's tail and one step back is enough; smaller datasets replay the chain,
 * which costs O(epoch * count) and stays small for them.
 */
function epochOrder(count: number, batchSize: number, seed: number, epoch: number): number[] {
  const first = count >= 2 * batchSize ? Math.max(0, epoch - 1) : 0;
  let order = shuffled(count, seed, first);
  for (let e = first + 1; e <= epoch; e++) order = nextEpoch(count, batchSize, seed, e, order);
  return order;
}

/** PRNG streams of extra sampling rounds start here, far above any epoch a run reaches. */
const ROUND_STREAMS = 2 ** 40;
/** Extra rounds per iteration the streams leave room for (the config allows 16). */
const ROUNDS_PER_ITERATION = 32;

/**
 * The problems of extra sampling round `round` (≥ 1, dynamic sampling) of an iteration: up to
 * `batchSize` problems that neither the iteration's batch nor its earlier rounds hold, taken in
 * the order of a shuffle of their own, so deterministic in (seed, iteration, batchSize, round) as
 * the batch is. Fewer, or none, once the dataset has no unseen problem left for the iteration.
 * They may come up again in later iterations' batches: a round borrows problems, the stream of
 * batches is unchanged.
 */
export function roundIndices(count: number, position: BatchPosition, round: number): number[] {
  if (!Number.isSafeInteger(round) || round < 1 || round >= ROUNDS_PER_ITERATION) throw new RangeError(`round must be an integer in 1..${ROUNDS_PER_ITERATION - 1}, got ${round}`);
  const taken = new Set(batchIndices(count, position));
  let picked: number[] = [];
  for (let r = 1; r <= round; r++) {
    const order = shuffled(count, position.seed, ROUND_STREAMS + position.iteration * ROUNDS_PER_ITERATION + r);
    picked = order.filter((i) => !taken.has(i)).slice(0, position.batchSize);
    for (const i of picked) taken.add(i);
  }
  return picked;
}
