import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DatasetError, Xoshiro128, batchIndices, roundIndices, sampleBatch } from '../../../activities/dataset/index.js';

/** A dataset size, a batch size that fits it, and a seed. */
const setup = fc
  .integer({ min: 1, max: 60 })
  .chain((count) => fc.record({ count: fc.constant(count), batchSize: fc.integer({ min: 1, max: count }), seed: fc.nat(2 ** 31 - 1) }));

/** Batches 0.. laid end to end, covering at least `epochs` whole epochs. */
function stream(count: number, batchSize: number, seed: number, epochs: number): number[] {
  const batches = Math.ceil((epochs * count) / batchSize);
  return Array.from({ length: batches }, (_, iteration) => batchIndices(count, { seed, iteration, batchSize })).flat();
}

describe('sampleBatch', () => {
  it('returns the same batch for the same seed, iteration and problem list', () => {
    fc.assert(
      fc.property(setup, fc.nat(10_000), ({ count, batchSize, seed }, iteration) => {
        assert.deepEqual(batchIndices(count, { seed, iteration, batchSize }), batchIndices(count, { seed, iteration, batchSize }));
      }),
    );
  });

  it('serves every problem exactly once per epoch before any repeats', () => {
    fc.assert(
      fc.property(setup, ({ count, batchSize, seed }) => {
        const positions = stream(count, batchSize, seed, 4);
        for (let epoch = 0; epoch < 4; epoch++) {
          const served = positions.slice(epoch * count, (epoch + 1) * count).sort((a, b) => a - b);
          assert.deepEqual(served, Array.from({ length: count }, (_, i) => i), `epoch ${epoch}`);
        }
      }),
    );
  });

  it('never puts a problem twice in one batch, also across an epoch boundary', () => {
    fc.assert(
      fc.property(setup, fc.nat(500), ({ count, batchSize, seed }, iteration) => {
        const batch = batchIndices(count, { seed, iteration, batchSize });
        assert.equal(batch.length, batchSize);
        assert.equal(new Set(batch).size, batchSize);
      }),
    );
  });

  it('resumes: a batch computed on its own equals the one a run reaches after all earlier batches', () => {
    fc.assert(
      fc.property(setup, fc.integer({ min: 1, max: 40 }), ({ count, batchSize, seed }, iteration) => {
        const reached = stream(count, batchSize, seed, Math.ceil(((iteration + 1) * batchSize) / count));
        const alone = batchIndices(count, { seed, iteration, batchSize });
        assert.deepEqual(alone, reached.slice(iteration * batchSize, (iteration + 1) * batchSize));
      }),
    );
  });

  it('picks the problems at the sampled positions of the list, in batch order', () => {
    const problems = Array.from({ length: 30 }, (_, i) => ({ questionId: `p/${i}` }));
    const position = { seed: 7, iteration: 3, batchSize: 8 };
    assert.deepEqual(
      sampleBatch(problems, position),
      batchIndices(30, position).map((i) => problems[i]),
    );
  });

  it('gives different runs different orders', () => {
    const orders = new Set([0, 1, 2, 3].map((seed) => JSON.stringify(batchIndices(100, { seed, iteration: 0, batchSize: 100 }))));
    assert.equal(orders.size, 4);
  });

  it('keeps its sequence across releases, so a resumed run samples what it would have', () => {
    // Pinned output: a change here changes the batches of every existing run.
    assert.deepEqual(
      [0, 1, 2, 3].map((iteration) => batchIndices(10, { seed: 0, iteration, batchSize: 4 })),
      [
        [8, 6, 1, 4],
        [9, 5, 3, 2],
        [0, 7, 6, 2],
        [3, 9, 0, 7],
      ],
    );
  });

  it('refuses a batch larger than the dataset and an empty dataset', () => {
    assert.throws(() => batchIndices(5, { seed: 0, iteration: 0, batchSize: 6 }), (err: Error) => err instanceof DatasetError && /batch size 6 exceeds the 5 problems/.test(err.message));
    assert.throws(() => sampleBatch([], { seed: 0, iteration: 0, batchSize: 1 }), DatasetError);
    assert.throws(() => batchIndices(5, { seed: 0, iteration: -1, batchSize: 2 }), RangeError);
  });
});

describe('roundIndices (extra rounds of dynamic sampling)', () => {
  it('draws problems that neither the batch nor an earlier round of the iteration holds, the same ones every time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 12 }), fc.nat(1000), fc.nat(50), (count, batchSize, seed, iteration) => {
        fc.pre(batchSize <= count);
        const position = { seed, iteration, batchSize };
        const seen = new Set(batchIndices(count, position));
        for (let round = 1; round <= 4; round++) {
          const picked = roundIndices(count, position, round);
          assert.deepEqual(roundIndices(count, position, round), picked, 'deterministic');
          assert.equal(picked.length, Math.min(batchSize, count - seen.size), 'a full batch while unseen problems last');
          for (const i of picked) {
            assert.ok(!seen.has(i), `problem ${i} sampled twice in iteration ${iteration}`);
            assert.ok(i >= 0 && i < count);
            seen.add(i);
          }
        }
      }),
    );
  });

  it('is empty once the iteration has sampled every problem, and refuses round 0', () => {
    assert.deepEqual(roundIndices(4, { seed: 1, iteration: 0, batchSize: 4 }, 1), []);
    assert.throws(() => roundIndices(10, { seed: 1, iteration: 0, batchSize: 4 }, 0), RangeError);
  });
});

describe('Xoshiro128', () => {
  it('matches the reference xoshiro128** output for the state (1, 2, 3, 4)', () => {
    const rng = new Xoshiro128([1, 2, 3, 4]);
    assert.deepEqual(
      Array.from({ length: 6 }, () => rng.nextUint32()),
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492],
    );
  });

  it('draws bounded integers in range and close to uniformly', () => {
    const rng = Xoshiro128.seeded(12345, 0);
    const counts = [0, 0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 70_000; i++) {
      const k = rng.below(7);
      counts[k] = counts[k]! + 1;
    }
    for (const count of counts) assert.ok(Math.abs(count - 10_000) < 400, `counts ${counts.join(', ')}`);
  });

  it('gives each seed and stream its own sequence', () => {
    const first = (seed: number, stream: number) => Xoshiro128.seeded(seed, stream).nextUint32();
    const values = new Set([first(0, 0), first(0, 1), first(1, 0), first(2 ** 32, 0), first(1, 1)]);
    assert.equal(values.size, 5);
  });
});
