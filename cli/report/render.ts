import type { IterationRecord } from '../../workflows/contract.js';
import { lineChart } from './line-chart.js';
import { groupMetrics } from './metric-groups.js';
import type { MetricGroup } from './metric-groups.js';
import { headlineSection } from './headline.js';
import type { IterationSamples } from './samples.js';
import { samplesSection } from './samples-html.js';
import { latestValue, metricSeries } from './series.js';
import { escapeHtml, formatValue } from './text.js';
import { styles } from './styles.js';
import type { RunStatus } from './status.js';
import { describeStatus } from './status.js';

export interface ReportInput {
  runId: string;
  /** Where the records were read from, shown in the summary. */
  storageUri?: string;
  /** At least one; sorted here by iteration. */
  records: readonly IterationRecord[];
  /** Sample rollouts of the last iterations (readRolloutSamples); no section without them. */
  samples?: readonly IterationSamples[];
  /** Where the run stands (readRunStatus); without it the report says nothing about what comes next. */
  status?: RunStatus;
}

/**
 * The whole report as one HTML document: the headline charts (is it learning?), run summary,
 * sample rollouts, a chart per metric grouped by what it measures, and a table of every value.
 * It loads nothing: styles are inline, charts are inline SVG, there is no script, and the
 * Content-Security-Policy forbids any fetch, so the file opens offline and stored strings
 * (model output included) cannot make it run code even if one slipped past escaping.
 */
export function renderReport({ runId, storageUri, records: unsorted, samples, status }: ReportInput): string {
  const records = [...unsorted].sort((a, b) => a.iteration - b.iteration);
  const groups = groupMetrics(records);
  const title = `Code-A1 run ${escapeHtml(runId)}`;
  const state = status && describeStatus(status);
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // A report opened during a run says so in its tab too.
    `<title>${title}${state?.state === 'running' ? ' (in progress)' : ''}</title>`,
    `<style>${styles}</style>`,
    '</head>',
    '<body>',
    `<h1>${title}</h1>`,
    state ? `<p id="status" class="status" data-state="${state.state}">${escapeHtml(state.text)}</p>` : '',
    headlineSection(records),
    summary(records, groups, storageUri),
    samples === undefined ? '' : samplesSection(samples, records.length),
    ...groups.map((group) => chartSection(records, group)),
    table(records, groups),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function summary(records: readonly IterationRecord[], groups: MetricGroup[], storageUri: string | undefined): string {
  const last = records[records.length - 1];
  const first = records[0];
  const iterations = !first || !last ? '0' : first === last ? `1 (iteration ${first.iteration})` : `${records.length} (iterations ${first.iteration}–${last.iteration})`;
  const rows: Array<[string, string]> = [
    ['Completed iterations', iterations],
    ...(storageUri === undefined ? [] : [['Storage', escapeHtml(storageUri)] as [string, string]]),
    ['Code LLM checkpoint', last ? code(last.checkpoints.code) : '–'],
    ['Test LLM checkpoint', last ? code(last.checkpoints.test) : '–'],
    ['Mistake Book', last ? code(last.mistakeBookKey) : '–'],
    ['Metrics', String(groups.reduce((n, g) => n + g.metrics.length, 0))],
  ];
  return `<section id="summary"><h2>Run</h2><dl>${rows.map(([term, value]) => `<dt>${term}</dt><dd>${value}</dd>`).join('')}</dl></section>`;
}

function chartSection(records: readonly IterationRecord[], group: MetricGroup): string {
  const figures = group.metrics.map((metric) => {
    const series = metricSeries(records, metric);
    return `<figure class="metric"><figcaption><span class="name">${escapeHtml(metric)}</span> <span class="latest">${formatValue(latestValue(series))}</span></figcaption>${lineChart(series)}</figure>`;
  });
  return `<section class="group" id="group-${group.id}"><h2>${escapeHtml(group.title)}</h2><div class="charts">${figures.join('')}</div></section>`;
}

function table(records: readonly IterationRecord[], groups: MetricGroup[]): string {
  const head = `<tr><th scope="col">metric</th>${records.map((r) => `<th scope="col">${r.iteration}</th>`).join('')}</tr>`;
  const body = groups.flatMap((group) =>
    group.metrics.map((metric) => {
      const { values } = metricSeries(records, metric);
      const cells = values.map((v) => `<td>${formatValue(v)}</td>`).join('');
      return `<tr data-metric="${escapeHtml(metric)}"><th scope="row">${escapeHtml(metric)}</th>${cells}</tr>`;
    }),
  );
  return [
    '<section id="all-metrics"><h2>All metrics by iteration</h2><div class="scroll">',
    `<table id="metrics"><thead>${head}</thead><tbody>${body.join('')}</tbody></table>`,
    '</div></section>',
  ].join('\n');
}

function code(text: string): string {
  return `<code>${escapeHtml(text)}</code>`;
}
