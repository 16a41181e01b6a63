import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { passAtK, scoreBenchmarks } from '../../../activities/evaluation/index.js';

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} != ${expected}`);

describe('the unbiased pass@k estimator', () => {
  it('matches 1 - C(n-c, k) / C(n, k) computed by hand', () => {
    close(passAtK(5, 2, 1), 1 - 3 / 5);
    close(passAtK(5, 2, 2), 1 - 3 / 10); // C(3,2) = 3, C(5,2) = 10
    close(passAtK(4, 1, 2), 1 - 3 / 6); // C(3,2) = 3, C(4,2) = 6
    close(passAtK(32, 1, 8), 1 - 24 / 32); // C(31,8) / C(32,8) = 24 / 32
    close(passAtK(32, 2, 16), 1 - (16 * 15) / (32 * 31)); // C(30,16) / C(32,16) = (16 × 15) / (32 × 31)
    close(passAtK(32, 5, 32), 1);
  });

  it('is 1 when fewer than k samples fail, and 0 when none passes', () => {
    assert.equal(passAtK(10, 3, 8), 1);
    assert.equal(passAtK(32, 0, 16), 0);
    assert.equal(passAtK(1, 1, 1), 1);
  });

  it('equals c / n at k = 1 and never decreases with k', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n }))), ([n, c]) => {
        close(passAtK(n, c, 1), c / n);
        for (let k = 2; k <= n; k++) assert.ok(passAtK(n, c, k) >= passAtK(n, c, k - 1) - 1e-12);
      }),
    );
  });

  it('rejects k above n and counts out of range', () => {
    assert.throws(() => passAtK(4, 1, 5), RangeError);
    assert.throws(() => passAtK(4, 5, 1), RangeError);
    assert.throws(() => passAtK(4, 1.5, 1), RangeError);
  });
});

describe('per-benchmark scores', () => {
  it('average avg@n and pass@k over the problems of each data source, for the ks that n allows', () => {
    const scores = scoreBenchmarks([
      { questionId: 'a', dataSource: 'humanevalplus', samples: 4, passed: 1 },
      { questionId: 'b', dataSource: 'mbppplus', samples: 4, passed: 4 },
      { questionId: 'c', dataSource: 'humanevalplus', samples: 4, passed: 0 },
    ], [1, 2, 8]);
    assert.deepEqual(scores, [
      // a: pass@1 = 1/4, pass@2 = 1/2; c: 0 and 0.
      { dataSource: 'humanevalplus', problems: 2, samples: 4, avgAtN: 0.125, passAtK: { 1: 0.125, 2: 0.25 } },
      { dataSource: 'mbppplus', problems: 1, samples: 4, avgAtN: 1, passAtK: { 1: 1, 2: 1 } },
    ]);
  });
});
