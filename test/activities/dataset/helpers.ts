import { sharedParquet } from '../../support/benchmarks.js';
import { testS3Connection } from '../../support/s3.js';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';

export { sharedParquet };

export async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'code-a1-dataset-'));
}

/** The shared parquet's rows exactly as stored, for re-encoding in other formats. */
export async function sharedParquetRows(): Promise<Record<string, unknown>[]> {
  const bytes = await readFile(sharedParquet);
  return parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer });
}

export async function writeJsonl(dir: string, name: string, rows: readonly unknown[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
  return path;
}

/** A valid benchmark-shape row (complete reference, MBPP style) to derive bad rows from. */
export function benchmarkRow(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    prompt: [{ role: 'user', content: 'Write add.' }],
    description: 'Add two numbers.',
    GT_code: 'def add(a, b):\n    return a + b\n',
    problem: 'def add(a, b):\n    """Add two numbers."""\n',
    test: 'def check(candidate):\n    assert candidate(1, 2) == 3\n',
    data_source: 'toy',
    extra_info: { function_name: 'add', question_id: id, imports: '', function_declaration: 'def add(a, b):' },
    ...overrides,
  };
}

/** A valid flat-shape row (KodCode-style sets exported with camelCase fields). */
export function flatRow(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    questionId: id,
    description: 'Double a number.',
    entryPoint: 'double',
    gtCode: 'def double(x):\n    return 2 * x\n',
    test: 'def check(candidate):\n    assert candidate(2) == 4\n',
    dataSource: 'kodcode',
    ...overrides,
  };
}

/**
 * The local S3 server the tests use (versitygw, bucket code-a1-test). Absent configuration fails
 * the test: a skipped S3 case would let the S3 path rot unnoticed.
 */
export const s3Bucket = 'code-a1-test';

export const s3Connection = testS3Connection;
