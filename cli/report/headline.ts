import type { IterationRecord } from '../../workflows/contract.js';
import { lineChart } from './line-chart.js';
import { latestValue, metricSeries } from './series.js';
import { escapeHtml, formatMetric } from './text.js';
import type { Unit } from './text.js';

/** One metric of the headline: the stored name, how to show it, and its header in the terminal table. */
export interface HeadlineMetric {
  metric: string;
  unit: Unit;
  /** Tells it from the other metrics of the same figure, when there are others. */
  label?: string;
  /** Two words, one per header line of the end-of-run table (cli/progress.ts). */
  column: [string, string];
}

export interface HeadlineChart {
  /** A fixed identifier for the figure's HTML attribute; never derived from stored names. */
  id: string;
  title: string;
  metrics: HeadlineMetric[];
}

/** A policy's loss and KL: two charts rather than two lines on one, as KL is orders of magnitude below the loss. */
function trainer(role: 'code' | 'test', model: string): HeadlineChart {
  return {
    id: `train-${role}`,
    title: `Loss / KL (${model})`,
    metrics: [
      { metric: `train.${role}.loss`, unit: 'number', label: 'loss', column: [role, 'loss'] },
      { metric: `train.${role}.kl`, unit: 'number', label: 'KL', column: [role, 'KL'] },
    ],
  };
}

/**
 * What answers "is it learning?": the code reward rising, generated tests staying valid while
 * they attack more often, the Mistake Book filling, and both policies' loss and KL staying
 * sane. The report charts these first and the end-of-run table prints them first, in this order.
 * Names as activities/run-state.ts recordIteration stores them (`train.<role>.<trainer metric>`).
 */
export const headline: readonly HeadlineChart[] = [
  { id: 'code-reward', title: 'Code reward (mean)', metrics: [{ metric: 'score.codeRewardMean', unit: 'number', column: ['code', 'reward'] }] },
  { id: 'valid-tests', title: 'Valid generated tests', metrics: [{ metric: 'score.validTestRatio', unit: 'ratio', column: ['valid', 'tests'] }] },
  { id: 'attack-rate', title: 'Attack rate', metrics: [{ metric: 'score.attackRate', unit: 'ratio', column: ['attack', 'rate'] }] },
  { id: 'book-tests', title: 'Mistake Book tests', metrics: [{ metric: 'updateMistakeBook.bookTests', unit: 'number', column: ['book', 'tests'] }] },
  trainer('code', 'Code LLM'),
  trainer('test', 'Test LLM'),
];

/** The headline as one section of figures, each a title, its latest values and a chart per metric. */
export function headlineSection(records: readonly IterationRecord[]): string {
  const figures = headline.map(({ id, title, metrics }) => {
    const charts = metrics.map(({ metric, unit, label }) => {
      const series = metricSeries(records, metric);
      const name = label ? `<span class="label">${escapeHtml(label)}</span> ` : '';
      return `<div class="series"><div class="series-caption">${name}<code>${escapeHtml(metric)}</code> <span class="latest">${formatMetric(latestValue(series), unit)}</span></div>${lineChart(series)}</div>`;
    });
    return `<figure class="headline" data-chart="${id}"><figcaption><span class="title">${escapeHtml(title)}</span></figcaption>${charts.join('')}</figure>`;
  });
  return `<section class="group" id="headline"><h2>Is it learning?</h2><div class="charts">${figures.join('')}</div></section>`;
}
