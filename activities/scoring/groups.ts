/** Epsilon of the GRPO advantage denominator, as in the paper's configuration. */
export const ADVANTAGE_EPSILON = 1e-6;

export function mean(xs: readonly number[]): number {
  let sum = 0;
  for (const x of xs) sum += x;
  return xs.length === 0 ? 0 : sum / xs.length;
}

/** Population standard deviation (divides by n, not n - 1). */
export function populationStd(xs: readonly number[]): number {
  const m = mean(xs);
  let sum = 0;
  for (const x of xs) sum += (x - m) * (x - m);
  return xs.length === 0 ? 0 : Math.sqrt(sum / xs.length);
}

/** GRPO advantages of one group: (r - mean) / (std + 1e-6). */
export function groupAdvantages(rewards: readonly number[]): number[] {
  const m = mean(rewards);
  const s = populationStd(rewards);
  return rewards.map((r) => (r - m) / (s + ADVANTAGE_EPSILON));
}

/** True when every reward is exactly equal: such a group carries no signal. */
export function isConstant(rewards: readonly number[]): boolean {
  return rewards.every((r) => r === rewards[0]);
}

/**
 * Indices of the `n` groups with the largest population std, ties to the lower index, returned
 * ascending; every index when there are no more than `n` groups.
 */
export function selectByStd(groups: readonly (readonly number[])[], n: number): number[] {
  const indices = groups.map((_, i) => i);
  if (groups.length <= n) return indices;
  const stds = groups.map(populationStd);
  return indices
    .sort((a, b) => stds[b]! - stds[a]! || a - b)
    .slice(0, n)
    .sort((a, b) => a - b);
}
