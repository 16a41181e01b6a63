/**
 * The unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models Trained on
 * Code"): with n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), the chance that k
 * samples drawn without replacement include a passing one. Computed as a product so that n = 32
 * (the paper's setting) or far more never overflows.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || !Number.isInteger(c) || !Number.isInteger(k)) throw new RangeError(`pass@k needs integers, got n=${n} c=${c} k=${k}`);
  if (n < 1 || k < 1 || k > n || c < 0 || c > n) throw new RangeError(`pass@k needs 1 <= k <= n and 0 <= c <= n, got n=${n} c=${c} k=${k}`);
  // 1. Fewer failures than k: every draw of k holds a pass.
  if (n - c < k) return 1;
  // 2. C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i).
  let allFail = 1;
  for (let i = n - c + 1; i <= n; i++) allFail *= 1 - k / i;
  return 1 - allFail;
}

/** The k values reported: the paper's (1, 8, 16, 32) that the sample count allows. */
export const PAPER_KS = [1, 8, 16, 32] as const;

export interface ProblemCounts {
  questionId: string;
  /** Benchmark the problem belongs to (the dataset's data source). */
  dataSource: string;
  samples: number;
  passed: number;
}

export interface BenchmarkScore {
  dataSource: string;
  problems: number;
  /** Samples per problem (the smallest, should problems differ). */
  samples: number;
  /** Mean over problems of passed / samples. */
  avgAtN: number;
  /** Mean over problems of pass@k, for each k <= samples, keyed by k. */
  passAtK: Record<string, number>;
}

/** Per-benchmark avg@n and pass@k, in first-seen order of the data sources. */
export function scoreBenchmarks(counts: readonly ProblemCounts[], ks: readonly number[] = PAPER_KS): BenchmarkScore[] {
  const groups = new Map<string, ProblemCounts[]>();
  for (const problem of counts) {
    const group = groups.get(problem.dataSource);
    if (group) group.push(problem);
    else groups.set(problem.dataSource, [problem]);
  }
  return [...groups].map(([dataSource, problems]) => {
    const samples = Math.min(...problems.map((p) => p.samples));
    const mean = (f: (p: ProblemCounts) => number) => problems.reduce((sum, p) => sum + f(p), 0) / problems.length;
    const passAt: Record<string, number> = {};
    for (const k of ks.filter((k) => k <= samples)) passAt[String(k)] = mean((p) => passAtK(p.samples, p.passed, k));
    return { dataSource, problems: problems.length, samples, avgAtN: mean((p) => p.passed / p.samples), passAtK: passAt };
  });
}
