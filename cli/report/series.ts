import type { IterationRecord } from '../../workflows/contract.js';

/** One metric across the iterations of a run, `undefined` where an iteration has no finite value. */
export interface MetricSeries {
  metric: string;
  iterations: number[];
  values: Array<number | undefined>;
}

export function metricSeries(records: readonly IterationRecord[], metric: string): MetricSeries {
  return {
    metric,
    iterations: records.map((r) => r.iteration),
    values: records.map((r) => {
      const value: unknown = Object.hasOwn(r.metrics, metric) ? r.metrics[metric] : undefined;
      // Stored JSON turns NaN into null; a metric that was never recorded is simply absent.
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    }),
  };
}

/** The value of the last iteration that has one. */
export function latestValue({ values }: MetricSeries): number | undefined {
  return values.filter((v) => v !== undefined).pop();
}
