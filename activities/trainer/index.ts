export { buildRollouts, hyperparameters, readRollouts } from './job.js';
export type { TrainerHyperparameters, TrainerJob, TrainerRollout } from './job.js';
export { MANIFEST, METRICS, OPTIMIZER_STATE, attemptDir, listFiles, numericMetrics, readManifest, sha256File, uploadDir } from './layout.js';
export type { CheckpointFile, CheckpointManifest } from './layout.js';
export { isStoreUri, materialise, resolveCheckpointRef } from './materialise.js';
export type { LocalCheckpoint } from './materialise.js';
export { JOB_REJECTED_EXIT, TrainerFailedError, killGroup, runTrainer } from './run-trainer.js';
export type { RunTrainerOptions } from './run-trainer.js';
