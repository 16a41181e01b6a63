import type { IterationRecord, TrainingProgress } from '../workflows/contract.js';
import { stages } from '../workflows/contract.js';
import type { IterationProgress } from '../workflows/iteration.js';

/** One line describing where a run stands; a bar when the output is a terminal. */
export function progressLine(run: TrainingProgress, iteration: IterationProgress | undefined, tty: boolean): string {
  const stagesDone = iteration ? iteration.completedStages.length : 0;
  const fraction = (run.completedIterations + stagesDone / stages.length) / Math.max(run.targetIterations, 1);
  const where = iteration
    ? `iteration ${iteration.iteration + 1}/${run.targetIterations} · ${iteration.stage} (stage ${stagesDone + 1}/${stages.length})`
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

/** The columns of the end-of-run summary: the metrics a user looks at first. */
const columns: Array<[string, string, (v: number) => string]> = [
  ['code reward', 'score.codeRewardMean', (v) => v.toFixed(3)],
  ['test reward', 'score.testRewardMean', (v) => v.toFixed(3)],
  ['valid tests', 'score.validTestRatio', percent],
  ['attack rate', 'score.attackRate', percent],
  ['invalid code', 'score.invalidCodeRate', percent],
  ['book tests', 'updateMistakeBook.bookTests', (v) => String(v)],
  ['loss code', 'train.code.loss', (v) => v.toFixed(4)],
  ['loss test', 'train.test.loss', (v) => v.toFixed(4)],
  ['tokens', 'generateCode.completionTokens', (v) => String(v)],
];

function percent(v: number): string {
  return `${(v * 100).toFixed(1)}%`;
}

export function summaryTable(records: IterationRecord[]): string {
  const header = ['iter', ...columns.map(([name]) => name), 'seconds'];
  const rows = records.map((r) => {
    const seconds = Object.entries(r.metrics)
      .filter(([k]) => k.startsWith('duration.'))
      .reduce((sum, [, ms]) => sum + ms / 1000, 0);
    return [String(r.iteration), ...columns.map(([, key, fmt]) => (key in r.metrics ? fmt(r.metrics[key]!) : '-')), seconds.toFixed(0)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
