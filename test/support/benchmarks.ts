import { fileURLToPath } from 'node:url';

/**
 * HumanEval+ and MBPP+ with reference solutions and golden tests. Not ours to commit: it is read
 * from the team's shared folder beside the checkout, or from CODE_A1_BENCHMARK_PARQUET.
 */
export const sharedParquet =
  process.env.CODE_A1_BENCHMARK_PARQUET ??
  fileURLToPath(new URL('../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));
