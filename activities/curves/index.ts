/**
 * Training curves: each completed iteration's metrics as a TensorBoard event file, written by
 * python/tensorboard_log.py (tensorboard's own writer) and stored beside the run's artifacts.
 */
export { CurveWriterError, curveKeys, curvesPython, eventFileName, iterationOfEventFile, renderEventFile } from './event-file.js';
export type { EventFileOptions } from './event-file.js';
export { copyInto, createCurveWriter } from './write-curves.js';
export type { CurveOptions, CurveOutcome } from './write-curves.js';
