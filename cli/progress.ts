import type { IterationRecord, TrainingProgress } from '../workflows/contract.js';
import { stages } from '../workflows/contract.js';
import type { IterationProgress } from '../workflows/iteration.js';
import { headline } from './report/headline.js';
import { formatMetric } from './report/text.js';
import type { Unit } from './report/text.js';

/** One line describing where a run stands; a bar when the output is a terminal. */
export function progressLine(run: TrainingProgress, iteration: IterationProgress | undefined, tty: boolean): string {
  // Distinct stages: the batch stages run again in each extra sampling round (dynamic sampling).
  const stagesDone = iteration ? new Set(iteration.completedStages).size : 0;
  const fraction = (run.completedIterations + stagesDone / stages.length) / Math.max(run.targetIterations, 1);
  const round = iteration?.round ? `, sampling round ${iteration.round + 1}` : '';
  const where = iteration
    ? `iteration ${iteration.iteration + 1}/${run.targetIterations} · ${iteration.stage} (stage ${stages.indexOf(iteration.stage) + 1}/${stages.length}${round})`
    : `${run.completedIterations}/${run.targetIterations} iterations done`;
  const flags = [run.paused && 'paused', run.stopping && 'stopping'].filter(Boolean).join(', ');
  const text = `${where}${flags ? ` [${flags}]` : ''}`;
  if (!tty) return text;
  const width = 24;
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(fraction * 100)
    .toString()
    .padStart(3)}% ${text}`;
}

/**
 * The columns of the end-of-run summary: the report's headline metrics first (is it learning?),
 * then invalid code and the test reward. Each header is two words on two lines, so that twelve
 * columns fit in 120 characters.
 */
const columns: Array<{ metric: string; unit: Unit; header: [string, string] }> = [
  ...headline.flatMap((chart) => chart.metrics.map(({ metric, unit, column }) => ({ metric, unit, header: column }))),
  { metric: 'score.invalidCodeRate', unit: 'ratio', header: ['invalid', 'code'] },
  { metric: 'score.testRewardMean', unit: 'number', header: ['test', 'reward'] },
];

export function summaryTable(records: IterationRecord[]): string {
  const headers = [['', 'iter'], ...columns.map((c) => c.header), ['', 'seconds']];
  const rows = records.map((r) => {
    const seconds = Object.entries(r.metrics)
      .filter(([k]) => k.startsWith('duration.'))
      .reduce((sum, [, ms]) => sum + ms / 1000, 0);
    const cells = columns.map(({ metric, unit }) => formatMetric(Object.hasOwn(r.metrics, metric) ? r.metrics[metric] : undefined, unit));
    return [String(r.iteration), ...cells, seconds.toFixed(0)];
  });
  const widths = headers.map((h, i) => Math.max(...h.map((word) => word.length), ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ').trimEnd();
  return [line(headers.map((h) => h[0]!)), line(headers.map((h) => h[1]!)), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
