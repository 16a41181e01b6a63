/**
 * The run report: iteration records and sample rollouts in, one self-contained HTML file out.
 * Rendering is pure (records to a string); reading and writing sit at the edges.
 */
export { renderReport } from './render.js';
export type { ReportInput } from './render.js';
export { groupMetrics } from './metric-groups.js';
export type { MetricGroup } from './metric-groups.js';
export { readIterationRecords } from './records.js';
export { defaultReportPath, writeReport } from './write.js';
export { headline } from './headline.js';
export type { HeadlineChart, HeadlineMetric } from './headline.js';
export { readRolloutSamples, sampleDefaults } from './samples.js';
export type { IterationSamples, RolloutSample, SampleOptions } from './samples.js';
export { describeStatus, readRunStatus } from './status.js';
export type { RunState, RunStatus } from './status.js';
