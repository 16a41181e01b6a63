import type { Problem } from '../records.js';
import type { RowIssue } from './dataset-error.js';
import type { RawRow } from './formats.js';

/**
 * Turns one decoded row into a Problem. Two row shapes are accepted:
 *
 * - benchmark rows, as in the HumanEval+/MBPP+ parquet and the paper's KodCode set: `description`,
 *   `GT_code`, optional `problem` header, optional `test`, `data_source`, and `extra_info` (an
 *   object, or its JSON text) with `question_id` and `function_name`; the `prompt` messages are
 *   not kept, since this project renders its own prompts;
 * - flat rows: `questionId`, `description`, `entryPoint`, `gtCode`, optional `prompt` (or
 *   `problem`) header, `test` and `dataSource`.
 *
 * A reference that does not define the entry point at top level is a function body (HumanEval
 * style) and is appended to the header; that rule, rather than the data source, decides, so
 * any set mixing complete references and bodies loads correctly. A row without a data source
 * gets `defaultSource` (the dataset's file name), so `sources` filtering still sees every row.
 */
export function normaliseRow(raw: RawRow, defaultSource: string): Problem | RowIssue[] {
  const issues: RowIssue[] = [];
  const at = { row: raw.row, ...(raw.line !== undefined ? { line: raw.line } : {}) };
  const fail = (field: string, message: string) => issues.push({ ...at, field, message });

  if (!isRecord(raw.value)) {
    fail('(row)', `expected an object, got ${kind(raw.value)}`);
    return issues;
  }
  const row = raw.value;
  const benchmark = 'GT_code' in row || 'extra_info' in row;
  if (!benchmark && !('gtCode' in row || 'questionId' in row)) {
    fail('(row)', 'matches neither row shape: expected GT_code and extra_info (benchmark rows) or questionId and gtCode (flat rows)');
    return issues;
  }

  let extra: Record<string, unknown> | undefined;
  if (benchmark) {
    const value = typeof row.extra_info === 'string' ? parseJson(row.extra_info) : row.extra_info;
    if (isRecord(value)) extra = value;
    else fail('extra_info', row.extra_info == null ? 'missing' : `expected an object or its JSON text, got ${kind(row.extra_info)}`);
  }
  // Without extra_info its fields are not reported one by one: the one issue says it all.
  const fromExtra = (field: string, check: (value: unknown, name: string, fail: Fail) => string | undefined, name: string) =>
    extra === undefined ? undefined : check(extra[field], name, fail);
  // Field names as the row spells them, so that messages point at what the user sees in the file.
  const names = benchmark
    ? { id: 'extra_info.question_id', entry: 'extra_info.function_name', gt: 'GT_code', source: 'data_source' }
    : { id: 'questionId', entry: 'entryPoint', gt: 'gtCode', source: 'dataSource' };

  const questionId = benchmark ? fromExtra('question_id', identifier, names.id) : identifier(row.questionId, names.id, fail);
  const idIssues = issues.length;
  const description = requiredText(row.description, 'description', fail);
  const entryPoint = benchmark ? fromExtra('function_name', requiredText, names.entry) : requiredText(row.entryPoint, names.entry, fail);
  if (entryPoint !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(entryPoint)) {
    fail(names.entry, `not a Python identifier: ${JSON.stringify(entryPoint)}`);
  }
  const reference = requiredText(benchmark ? row.GT_code : row.gtCode, names.gt, fail);
  const headerField = benchmark ? 'problem' : typeof row.prompt === 'string' ? 'prompt' : 'problem';
  const header = optionalText(row[headerField], headerField, fail);
  const test = optionalText(row.test, 'test', fail);
  if (test !== undefined && !/^def[ \t]+check[ \t]*\(/m.test(test)) fail('test', 'defines no top-level check(candidate) function');
  const source = optionalText(row[names.source], names.source, fail) ?? defaultSource;

  // Completing the reference needs every field it reads to be valid; the id does not matter.
  let gtCode: string | undefined;
  if (reference !== undefined && entryPoint !== undefined && issues.length === idIssues) {
    if (definesFunction(reference, entryPoint)) gtCode = reference;
    else if (header !== undefined && definesFunction(joinHeader(header, reference), entryPoint)) gtCode = joinHeader(header, reference);
    else {
      fail(
        names.gt,
        header === undefined
          ? `does not define ${entryPoint}() at top level, and the row has no ${headerField} header to complete it`
          : `does not define ${entryPoint}() at top level, not even after its ${headerField} header`,
      );
    }
  }

  if (issues.length > 0 || questionId === undefined || description === undefined || entryPoint === undefined || gtCode === undefined) {
    // Naming the question as well as the row helps find it in a large set.
    if (questionId !== undefined) for (const issue of issues) issue.questionId = questionId;
    return issues;
  }
  return {
    questionId,
    description,
    entryPoint,
    gtCode,
    ...(header !== undefined ? { prompt: header } : {}),
    ...(test !== undefined ? { test } : {}),
    dataSource: source,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

type Fail = (field: string, message: string) => void;

/** Question ids are strings; integer ids (parquet int64 arrives as bigint) are taken as their decimal text. */
function identifier(value: unknown, field: string, fail: Fail): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  return requiredText(value, field, fail);
}

function requiredText(value: unknown, field: string, fail: Fail): string | undefined {
  if (value === undefined || value === null) return void fail(field, 'missing');
  if (typeof value !== 'string') return void fail(field, `expected a string, got ${kind(value)}`);
  if (value.trim() === '') return void fail(field, 'empty');
  return value;
}

/** Absent, null and blank all mean "not given"; anything else must be a string. */
function optionalText(value: unknown, field: string, fail: Fail): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') return void fail(field, `expected a string, got ${kind(value)}`);
  return value.trim() === '' ? undefined : value;
}

function definesFunction(code: string, name: string): boolean {
  return new RegExp(`^(?:async[ \\t]+)?def[ \\t]+${name}[ \\t]*\\(`, 'm').test(code);
}

function joinHeader(header: string, body: string): string {
  return header.endsWith('\n') ? header + body : `${header}\n${body}`;
}
