/**
 * A small seeded PRNG for batch sampling: xoshiro128** (Blackman and Vigna), its 128-bit state
 * filled by splitmix32 from (seed, stream). Written out here rather than taken from a package so
 * that the sequence, which decides every run's batches, can never change under a dependency
 * upgrade; Math.random is not seedable at all.
 */

const GOLDEN_GAMMA = 0x9e3779b9;

/** splitmix32's output function: a bijective 32-bit mix with good avalanche. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Splits a non-negative safe integer into its low and high 32-bit words. */
function words(value: number): [number, number] {
  return [value >>> 0, Math.floor(value / 2 ** 32) >>> 0];
}

export class Xoshiro128 {
  private readonly s: Uint32Array;

  /** Use `Xoshiro128.seeded`; this takes the raw state (for known-answer tests). */
  constructor(state: readonly [number, number, number, number]) {
    this.s = Uint32Array.from(state);
    // The all-zero state is xoshiro's one fixed point.
    if (this.s.every((word) => word === 0)) this.s[0] = 1;
  }

  /** Independent streams for each (seed, stream) pair, e.g. stream = epoch. */
  static seeded(seed: number, stream: number): Xoshiro128 {
    for (const [name, value] of [['seed', seed], ['stream', stream]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
    }
    let state = 0;
    for (const word of [...words(seed), ...words(stream)]) state = mix32((state ^ word) + GOLDEN_GAMMA);
    const next = () => {
      state = (state + GOLDEN_GAMMA) >>> 0;
      return mix32(state);
    };
    return new Xoshiro128([next(), next(), next(), next()]);
  }

  nextUint32(): number {
    let [s0 = 0, s1 = 0, s2 = 0, s3 = 0] = this.s;
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3 >>> 0, 11);
    this.s.set([s0 >>> 0, s1 >>> 0, s2 >>> 0, s3]);
    return result;
  }

  /** A uniform integer in [0, bound); rejection sampling keeps it free of modulo bias. */
  below(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > 2 ** 32) throw new RangeError(`bound must be an integer in [1, 2^32], got ${bound}`);
    const limit = 2 ** 32 - (2 ** 32 % bound);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % bound;
    }
  }
}
