import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Problem } from '../records.js';
import type { ObjectStore } from '../storage/index.js';
import { openStore as openStoreWithoutS3 } from '../storage/index.js';
import { builtinDatasetPath } from './builtin.js';
import type { RowIssue } from './dataset-error.js';
import { DatasetError, describeIssue, listIssues } from './dataset-error.js';
import type { DatasetFormat } from './formats.js';
import { decodeRows, detectFormat, gunzipIfNeeded } from './formats.js';
import { normaliseRow } from './normalise.js';

export interface LoadProblemsOptions {
  /**
   * Opens the object store at a root URI (`file:///dir` or `s3://bucket`). Pass the worker's
   * (`StorageDeps.openStore`), which carries its S3 connection; the default has no S3 connection.
   */
  openStore?: (uri: string) => ObjectStore;
  /** Keep only rows whose data source is listed (run config `dataset.sources`); all rows when absent. */
  sources?: readonly string[];
  /**
   * `fail` (default): any invalid row fails the load with a DatasetError naming the rows.
   * `skip`: invalid rows are left out and counted, and the first few described, in the report.
   * Duplicate question ids fail the load either way: which of the rows is meant cannot be told.
   */
  badRows?: 'fail' | 'skip';
  /** How many bad rows a message or report describes; the counts always cover all of them. */
  maxListed?: number;
}

export interface DatasetReport {
  uri: string;
  format: DatasetFormat;
  /** Rows in the file, valid or not. */
  rowsRead: number;
  /** Rows that could not become a Problem (non-zero only with `badRows: 'skip'`). */
  badRows: number;
  /** Valid rows left out because their data source is not in `sources`. */
  filteredBySource: number;
  kept: number;
  /** Kept problems per data source. */
  bySource: Record<string, number>;
  /** The first `maxListed` bad rows, described. */
  badRowExamples: string[];
}

export interface LoadedDataset {
  problems: Problem[];
  report: DatasetReport;
}

/** The `dataset.uri` value that names the set shipped in this repository. */
export const BUILTIN_DATASET = 'builtin';

/**
 * Loads and validates every problem of a dataset: `builtin`, a local path, a `file://` URI or an
 * `s3://bucket/key` URI of a parquet or JSONL file (optionally gzip-compressed). Problems keep
 * the file's row order, which batch sampling depends on.
 */
export async function loadProblems(uri: string, options: LoadProblemsOptions = {}): Promise<LoadedDataset> {
  const maxListed = options.maxListed ?? 20;
  const file = gunzipIfNeeded(...(await readDataset(uri, options.openStore ?? ((root) => openStoreWithoutS3(root)))));
  const format = detectFormat(file.name, file.bytes);
  const decoded = await decodeRows(file.name, file.bytes, format);
  const rowsRead = decoded.rows.length + decoded.issues.length;
  if (rowsRead === 0) throw new DatasetError(`dataset ${uri} has no rows`);

  const defaultSource = file.name.replace(/\.(parquet|jsonl|ndjson)$/i, '');
  const issues: RowIssue[] = [...decoded.issues];
  const valid: { row: number; line?: number; problem: Problem }[] = [];
  for (const raw of decoded.rows) {
    const result = normaliseRow(raw, defaultSource);
    if (Array.isArray(result)) issues.push(...result);
    else valid.push({ row: raw.row, ...(raw.line !== undefined ? { line: raw.line } : {}), problem: result });
  }
  issues.sort((a, b) => a.row - b.row);
  const badRows = new Set(issues.map((issue) => issue.row)).size;
  if (badRows > 0 && options.badRows !== 'skip') {
    throw new DatasetError(
      `dataset ${uri}: ${badRows} of ${rowsRead} rows are invalid (nothing was loaded):\n${listIssues(issues, maxListed)}`,
      issues,
    );
  }

  const duplicates = findDuplicates(valid);
  if (duplicates.length > 0) {
    throw new DatasetError(`dataset ${uri}: question ids must be unique:\n${listIssues(duplicates, maxListed)}`, duplicates);
  }

  const present = new Set(valid.map(({ problem }) => problem.dataSource));
  const wanted = options.sources ? new Set(options.sources) : undefined;
  if (wanted) {
    // A source that matches nothing is almost always a misspelling (`humaneval` for `humanevalplus`).
    const unknown = [...wanted].filter((source) => !present.has(source));
    if (unknown.length > 0) {
      throw new DatasetError(
        `dataset ${uri}: sources ${unknown.map((s) => JSON.stringify(s)).join(', ')} match no row; its data sources are ${[...present].sort().map((s) => JSON.stringify(s)).join(', ')}`,
      );
    }
  }
  const problems = valid.map(({ problem }) => problem).filter((problem) => !wanted || wanted.has(problem.dataSource));
  if (problems.length === 0) throw new DatasetError(`dataset ${uri}: no valid rows (${badRows} of ${rowsRead} invalid)`, issues);

  const bySource: Record<string, number> = {};
  for (const problem of problems) bySource[problem.dataSource] = (bySource[problem.dataSource] ?? 0) + 1;
  return {
    problems,
    report: {
      uri,
      format,
      rowsRead,
      badRows,
      filteredBySource: valid.length - problems.length,
      kept: problems.length,
      bySource,
      badRowExamples: issues.slice(0, maxListed).map(describeIssue),
    },
  };
}

function findDuplicates(valid: readonly { row: number; line?: number; problem: Problem }[]): RowIssue[] {
  const first = new Map<string, number>();
  const duplicates: RowIssue[] = [];
  for (const { row, line, problem } of valid) {
    const earlier = first.get(problem.questionId);
    if (earlier === undefined) first.set(problem.questionId, row);
    else {
      const at = { row, ...(line !== undefined ? { line } : {}) };
      duplicates.push({ ...at, questionId: problem.questionId, field: 'question id', message: `duplicates row ${earlier}` });
    }
  }
  return duplicates;
}

/** The file's name (for format detection and messages) and bytes. */
async function readDataset(uri: string, open: (root: string) => ObjectStore): Promise<[string, Uint8Array]> {
  if (uri === BUILTIN_DATASET) return [basename(builtinDatasetPath), await readFile(builtinDatasetPath)];
  const { root, key } = locate(uri);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await open(root).get(key);
  } catch (err) {
    // A directory or an unreadable file will not get better on retry; I/O and network errors may.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EACCES') {
      throw new DatasetError(`dataset ${uri} cannot be read (${code})`, [], { cause: err });
    }
    throw err;
  }
  if (bytes === undefined) throw new DatasetError(`dataset ${uri} not found`);
  return [basename(key), bytes];
}

/** Splits a dataset URI into the store root to open and the key of the file inside it. */
export function locate(uri: string): { root: string; key: string } {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 's3') {
    const url = new URL(uri);
    const key = decodeURIComponent(url.pathname).replace(/^\/+/, '');
    if (!url.hostname || !key) throw new DatasetError(`dataset URI ${uri} must name a bucket and an object: s3://bucket/path/file.parquet`);
    return { root: `s3://${url.hostname}`, key };
  }
  let path: string;
  if (scheme === 'file') {
    try {
      path = fileURLToPath(uri);
    } catch (err) {
      throw new DatasetError(`dataset URI ${uri} is not a valid file:// URI`, [], { cause: err });
    }
  } else if (scheme === undefined) {
    path = resolve(uri);
  } else {
    throw new DatasetError(`dataset URI ${uri} has unsupported scheme ${scheme}:// (use builtin, a local path, file:// or s3://)`);
  }
  return { root: pathToFileURL(dirname(path)).href, key: basename(path) };
}
