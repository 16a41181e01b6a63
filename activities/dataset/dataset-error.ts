import { nonRetryableErrors } from '../../workflows/contract.js';

/** One reason a row of a dataset cannot become a Problem. */
export interface RowIssue {
  /** Position of the row in the file, from 0 (blank JSONL lines are not rows). */
  row: number;
  /** JSONL line number, from 1; absent for parquet. */
  line?: number;
  /** Known when the row's question id could be read. */
  questionId?: string;
  /** The offending field as the file spells it (e.g. `GT_code`, `extra_info.function_name`). */
  field: string;
  message: string;
}

export function describeIssue(issue: RowIssue): string {
  const where = [`row ${issue.row}`];
  if (issue.line !== undefined) where.push(`line ${issue.line}`);
  if (issue.questionId !== undefined) where.push(`question ${JSON.stringify(issue.questionId)}`);
  return `${where.join(', ')}: ${issue.field}: ${issue.message}`;
}

/** Lists the first `limit` issues, one per line, and says how many more there are. */
export function listIssues(issues: readonly RowIssue[], limit: number): string {
  const shown = issues.slice(0, limit).map((issue) => `  ${describeIssue(issue)}`);
  if (issues.length > limit) shown.push(`  … and ${issues.length - limit} more`);
  return shown.join('\n');
}

/**
 * A dataset that no retry can fix: unreadable, in an unknown format, or with invalid rows.
 * Its name is the contract's non-retryable type, so activities fail without retrying.
 */
export class DatasetError extends Error {
  override name: string = nonRetryableErrors.dataset;
  constructor(
    message: string,
    /** Every row issue behind the error, not only the ones the message lists. */
    readonly issues: readonly RowIssue[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
