/**
 * Training and evaluation problems: loading them from any supported dataset, and choosing each
 * iteration's batch. Pure of Temporal, so the sampleBatch activity and evaluation both build on it.
 */
export type { DatasetReport, LoadedDataset, LoadProblemsOptions } from './load.js';
export { BUILTIN_DATASET, loadProblems, locate } from './load.js';
export type { RowIssue } from './dataset-error.js';
export { DatasetError, describeIssue } from './dataset-error.js';
export type { DatasetFormat } from './formats.js';
export { builtinDatasetPath } from './builtin.js';
export type { BatchPosition } from './sample-batch.js';
export { batchIndices, roundIndices, sampleBatch } from './sample-batch.js';
export { Xoshiro128 } from './prng.js';
