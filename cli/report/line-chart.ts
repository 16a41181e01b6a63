import type { MetricSeries } from './series.js';
import { escapeHtml, formatValue } from './text.js';

// Small multiples: one chart per metric, sized so that three or four fit side by side.
const width = 260;
const height = 120;
const margin = { left: 46, right: 10, top: 10, bottom: 22 };
// Keeps the extreme points off the axes, where they would be hard to see.
const inset = 6;

/**
 * One metric across iterations as inline SVG: a line through the iterations that have a value
 * (broken where one has none, so a gap is not drawn as data), a point per value, the value
 * range on the y axis and the first and last iteration on the x axis.
 */
export function lineChart({ metric, iterations, values }: MetricSeries): string {
  const label = escapeHtml(metric);
  // Callers pass undefined for absent values; NaN and infinities are left out the same way.
  const valueAt = (i: number) => (Number.isFinite(values[i]) ? values[i] : undefined);
  const finite = values.filter((v): v is number => Number.isFinite(v));
  const open = `<svg class="chart" data-metric="${label}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${label} across iterations">`;
  const axes = [
    `<line class="axis" x1="${margin.left}" y1="${height - margin.bottom}" x2="${width - margin.right}" y2="${height - margin.bottom}"/>`,
    `<line class="axis" x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${height - margin.bottom}"/>`,
  ];
  if (iterations.length === 0 || finite.length === 0) {
    return [open, ...axes, `<text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">no values</text>`, '</svg>'].join('');
  }

  const first = iterations[0]!;
  const last = iterations[iterations.length - 1]!;
  const [left, right] = [margin.left + inset, width - margin.right - inset];
  const [top, bottom] = [margin.top + inset, height - margin.bottom - inset];
  const x = (iteration: number) => (first === last ? (left + right) / 2 : left + ((iteration - first) / (last - first)) * (right - left));
  let low = Math.min(...finite);
  let high = Math.max(...finite);
  if (low === high) {
    // A flat series still needs a range: centre it rather than draw it on an axis.
    const pad = Math.abs(low) * 0.1 || 1;
    low -= pad;
    high += pad;
  }
  const y = (value: number) => top + ((high - value) / (high - low)) * (bottom - top);

  let path = '';
  let drawing = false;
  const points: string[] = [];
  iterations.forEach((iteration, i) => {
    const value = valueAt(i);
    if (value === undefined) {
      drawing = false;
      return;
    }
    const [px, py] = [round(x(iteration)), round(y(value))];
    path += `${drawing ? 'L' : 'M'}${px} ${py}`;
    drawing = true;
    const text = formatValue(value);
    points.push(
      `<circle class="point" data-iteration="${iteration}" data-value="${text}" cx="${px}" cy="${py}" r="2.5"><title>iteration ${iteration}: ${text}</title></circle>`,
    );
  });

  const ticks = [
    `<text class="tick" x="${margin.left - 4}" y="${top + 3}" text-anchor="end">${formatValue(high)}</text>`,
    `<text class="tick" x="${margin.left - 4}" y="${bottom + 3}" text-anchor="end">${formatValue(low)}</text>`,
    `<text class="tick" x="${round(x(first))}" y="${height - 6}" text-anchor="${first === last ? 'middle' : 'start'}">${first}</text>`,
    first === last ? '' : `<text class="tick" x="${width - margin.right}" y="${height - 6}" text-anchor="end">${last}</text>`,
  ];
  return [open, ...axes, ...ticks, `<path class="line" d="${path}"/>`, ...points, '</svg>'].join('');
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
