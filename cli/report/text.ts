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
