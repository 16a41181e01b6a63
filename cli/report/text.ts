/**
 * How strings and numbers become HTML text. Metric names, run IDs and keys come from object
 * storage, which anyone with write access to the bucket controls: every one goes through
 * `escapeHtml`, in text and in attribute values alike.
 */
const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]!);
}

/** The placeholder for an absent value: a metric an iteration did not record, or a non-number. */
export const absent = '–';

/**
 * A metric value for tables and chart labels: integers as they are, other numbers with four
 * significant digits (losses and KL are small, durations large; one fixed-decimal format would
 * either hide the first or pad the second).
 */
export function formatValue(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return absent;
  if (Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  return String(Number(value.toPrecision(4)));
}

/** C0 controls other than tab, newline and carriage return, and DEL: model output may hold them, and HTML shows them as nothing or garbage. */
const controls = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/**
 * Untrusted text cut to at most `max` characters (before escaping, so no entity is cut in half),
 * control characters shown as U+FFFD. Says how much was cut, so a reader knows the text goes on.
 */
export function clip(text: string, max: number): string {
  const clean = text.replace(controls, '\uFFFD');
  if (clean.length <= max) return clean;
  // Never end on the first half of a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(clean[max - 1]!) ? max - 1 : max;
  return `${clean.slice(0, end)}… [${clean.length - end} more characters]`;
}

/** How a metric reads best: ratios as percentages, everything else as `formatValue` writes it. */
export type Unit = 'ratio' | 'number';

export function formatMetric(value: number | undefined, unit: Unit): string {
  if (unit !== 'ratio' || value === undefined || !Number.isFinite(value)) return formatValue(value);
  return `${(value * 100).toFixed(1)}%`;
}
