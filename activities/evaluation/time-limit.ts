/**
 * Time limits per golden-test program, after EvalPlus: a limit scales with the reference
 * solution's own measured time, with a generous floor, so that a correct but slower solution is
 * not failed by a loaded machine. EvalPlus uses max(1 s, 4 × reference) per test input; one of our
 * programs runs every input of a problem plus interpreter start and the numpy import, hence the
 * larger floor.
 */
export interface TimeLimitPolicy {
  /** Lower bound of every limit, in ms. */
  floorMs: number;
  /** Multiple of the reference's measured time. EvalPlus: 4. */
  factor: number;
  /** Limit for measuring the reference itself, in ms, and the cap of every limit. */
  referenceMs: number;
}

export const DEFAULT_TIME_LIMITS: TimeLimitPolicy = { floorMs: 10_000, factor: 4, referenceMs: 60_000 };

/**
 * The limit for solutions of a problem whose reference ran for `referenceMs` (whether it passed or
 * not: a failing reference still says how heavy the tests are), capped at the measuring limit.
 */
export function timeLimitMs(policy: TimeLimitPolicy, referenceMs: number): number {
  return Math.min(policy.referenceMs, Math.max(policy.floorMs, Math.ceil(policy.factor * referenceMs)));
}
