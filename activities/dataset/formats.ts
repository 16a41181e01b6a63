import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import type { Compressors } from 'hyparquet';
import { parquetReadObjects } from 'hyparquet';
import type { RowIssue } from './dataset-error.js';
import { DatasetError } from './dataset-error.js';

export type DatasetFormat = 'parquet' | 'jsonl';

/** A decoded row before normalisation, with where it sits in the file. */
export interface RawRow {
  row: number;
  line?: number;
  value: unknown;
}

const PARQUET_MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1", at both ends of every parquet file
const GZIP_MAGIC = [0x1f, 0x8b];

function startsWith(bytes: Uint8Array, magic: number[], at = 0): boolean {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

function isParquet(bytes: Uint8Array): boolean {
  return startsWith(bytes, PARQUET_MAGIC) && startsWith(bytes, PARQUET_MAGIC, bytes.length - 4);
}

/** Undoes gzip (`.jsonl.gz`, the usual way large JSONL sets are shipped) and drops `.gz` from the name. */
export function gunzipIfNeeded(name: string, bytes: Uint8Array): { name: string; bytes: Uint8Array } {
  if (!startsWith(bytes, GZIP_MAGIC)) return { name, bytes };
  try {
    return { name: name.replace(/\.gz$/i, ''), bytes: gunzipSync(bytes) };
  } catch (err) {
    throw new DatasetError(`dataset ${name} looks gzip-compressed but does not decompress`, [], { cause: err });
  }
}

/**
 * The format a name's extension claims, checked against the bytes; without a known extension
 * the bytes decide (parquet's magic, else JSON objects one per line).
 */
export function detectFormat(name: string, bytes: Uint8Array): DatasetFormat {
  const extension = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  if (extension === 'parquet') {
    if (!isParquet(bytes)) throw new DatasetError(`dataset ${name} is named .parquet but is not a parquet file (no PAR1 magic at both ends)`);
    return 'parquet';
  }
  if (extension === 'jsonl' || extension === 'ndjson') return 'jsonl';
  if (isParquet(bytes)) return 'parquet';
  const head = Buffer.from(bytes.subarray(0, 64)).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  if (head.startsWith('{')) return 'jsonl';
  throw new DatasetError(
    `cannot tell the format of dataset ${name}: expected a .parquet or .jsonl name, parquet's PAR1 magic, or one JSON object per line`,
  );
}

export async function decodeRows(name: string, bytes: Uint8Array, format: DatasetFormat): Promise<{ rows: RawRow[]; issues: RowIssue[] }> {
  return format === 'parquet' ? { rows: await decodeParquet(name, bytes), issues: [] } : decodeJsonl(bytes);
}

/**
 * hyparquet decodes snappy itself; gzip and brotli come from node:zlib. zstd and lz4 files
 * fail with hyparquet's "unsupported compression codec" error, wrapped below.
 */
const compressors: Compressors = {
  GZIP: (input) => gunzipSync(input),
  BROTLI: (input) => brotliDecompressSync(input),
};

async function decodeParquet(name: string, bytes: Uint8Array): Promise<RawRow[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let objects: Record<string, unknown>[];
  try {
    objects = await parquetReadObjects({ file, compressors });
  } catch (err) {
    throw new DatasetError(`cannot decode parquet dataset ${name}: ${(err as Error).message}`, [], { cause: err });
  }
  return objects.map((value, row) => ({ row, value }));
}

function decodeJsonl(bytes: Uint8Array): { rows: RawRow[]; issues: RowIssue[] } {
  const text = Buffer.from(bytes).toString('utf8').replace(/^\uFEFF/, '');
  const rows: RawRow[] = [];
  const issues: RowIssue[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const source = lines[i]!.trim();
    if (source === '') continue;
    const where = { row: rows.length + issues.length, line: i + 1 };
    try {
      rows.push({ ...where, value: JSON.parse(source) as unknown });
    } catch (err) {
      issues.push({ ...where, field: '(row)', message: `not valid JSON (${(err as Error).message})` });
    }
  }
  return { rows, issues };
}
