import { randomUUID } from 'node:crypto';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { LoadedDataset } from '../../../activities/dataset/index.js';
import { DatasetError, loadProblems } from '../../../activities/dataset/index.js';
import { openStore } from '../../../activities/storage/index.js';
import { flatRow, s3Bucket, s3Connection, sharedParquet, sharedParquetRows, tempDir, writeJsonl } from './helpers.js';

describe('loading the shared HumanEval+/MBPP+ parquet', () => {
  let loaded: LoadedDataset;
  let rows: Record<string, unknown>[];
  before(async () => {
    loaded = await loadProblems(sharedParquet);
    rows = await sharedParquetRows();
  });

  it('keeps all 542 rows and reports them by source', () => {
    assert.equal(loaded.problems.length, 542);
    assert.deepEqual(
      { ...loaded.report, uri: undefined },
      {
        uri: undefined,
        format: 'parquet',
        rowsRead: 542,
        badRows: 0,
        filteredBySource: 0,
        kept: 542,
        bySource: { humanevalplus: 164, mbppplus: 378 },
        badRowExamples: [],
      },
    );
  });

  it('makes each HumanEval+ reference its problem header followed by the GT body', () => {
    const humaneval = loaded.problems.filter((p) => p.dataSource === 'humanevalplus');
    const humanevalRows = rows.filter((row) => row.data_source === 'humanevalplus');
    assert.equal(humaneval.length, 164);
    for (const [i, problem] of humaneval.entries()) {
      const row = humanevalRows[i]!;
      assert.equal(problem.gtCode, `${row.problem as string}${row.GT_code as string}`, problem.questionId);
      assert.match(problem.gtCode, new RegExp(`^def ${problem.entryPoint}\\(`, 'm'));
    }
  });

  it('keeps MBPP+ references as they are, since they are complete functions', () => {
    const mbpp = loaded.problems.filter((p) => p.dataSource === 'mbppplus');
    const mbppRows = rows.filter((row) => row.data_source === 'mbppplus');
    assert.deepEqual(
      mbpp.map((p) => p.gtCode),
      mbppRows.map((row) => row.GT_code),
    );
  });

  it('takes ids, entry points, headers and golden tests from the row', () => {
    const first = loaded.problems[0]!;
    assert.equal(first.questionId, 'HumanEval/0');
    assert.equal(first.entryPoint, 'has_close_elements');
    assert.equal(first.prompt, rows[0]!.problem);
    assert.equal(first.test, rows[0]!.test);
    assert.equal(first.description, rows[0]!.description);
  });

  it('keeps only the listed sources and counts the rows it filtered', async () => {
    const { problems, report } = await loadProblems(sharedParquet, { sources: ['humanevalplus'] });
    assert.equal(problems.length, 164);
    assert.ok(problems.every((p) => p.dataSource === 'humanevalplus'));
    assert.equal(report.rowsRead, 542);
    assert.equal(report.filteredBySource, 378);
    assert.equal(report.kept, 164);
    assert.deepEqual(report.bySource, { humanevalplus: 164 });
  });

  it('rejects a source that matches no row and names the sources there are', async () => {
    await assert.rejects(loadProblems(sharedParquet, { sources: ['humanevalplus', 'humaneval'] }), (err: Error) => {
      assert.ok(err instanceof DatasetError);
      assert.match(err.message, /"humaneval" match no row/);
      assert.match(err.message, /"humanevalplus", "mbppplus"/);
      return true;
    });
  });
});

describe('the same problems from every format and location', () => {
  let reference: LoadedDataset;
  let dir: string;
  before(async () => {
    reference = await loadProblems(sharedParquet);
    dir = await tempDir();
  });

  const sameAs = (loaded: LoadedDataset) => assert.deepEqual(loaded.problems, reference.problems);

  it('loads the parquet re-encoded as JSONL into identical problems', async () => {
    sameAs(await loadProblems(await writeJsonl(dir, 'plus.jsonl', await sharedParquetRows())));
  });

  it('loads gzip-compressed JSONL', async () => {
    const path = await writeJsonl(dir, 'plain.jsonl', await sharedParquetRows());
    await writeFile(`${path}.gz`, gzipSync(await readFile(path)));
    sameAs(await loadProblems(`${path}.gz`));
  });

  it('loads a file:// URI', async () => {
    sameAs(await loadProblems(pathToFileURL(sharedParquet).href));
  });

  it('recognises parquet and JSONL by their content when the name has no known extension', async () => {
    await copyFile(sharedParquet, join(dir, 'mystery-a'));
    await writeJsonl(dir, 'mystery-b', await sharedParquetRows());
    sameAs(await loadProblems(join(dir, 'mystery-a')));
    sameAs(await loadProblems(join(dir, 'mystery-b')));
  });

  it('loads parquet and JSONL from S3 through the store the caller opens', async () => {
    const connection = s3Connection();
    const prefix = `datasets/${randomUUID()}`;
    const store = openStore(`s3://${s3Bucket}/${prefix}`, connection);
    await store.putFile('plus.parquet', sharedParquet);
    await store.putFile('plus.jsonl', await writeJsonl(dir, 's3.jsonl', await sharedParquetRows()));
    const open = (uri: string) => openStore(uri, connection);
    sameAs(await loadProblems(`s3://${s3Bucket}/${prefix}/plus.parquet`, { openStore: open }));
    sameAs(await loadProblems(`s3://${s3Bucket}/${prefix}/plus.jsonl`, { openStore: open }));
    await assert.rejects(loadProblems(`s3://${s3Bucket}/${prefix}/absent.parquet`, { openStore: open }), /not found/);
  });

  it('loads flat camelCase rows, completing a body-only reference from its prompt header', async () => {
    const path = await writeJsonl(dir, 'flat.jsonl', [
      flatRow('kod/1'),
      flatRow('kod/2', { entryPoint: 'halve', prompt: 'def halve(x):\n    """Half of x."""\n', gtCode: '    return x / 2\n', dataSource: undefined }),
    ]);
    const { problems } = await loadProblems(path);
    assert.deepEqual(problems, [
      {
        questionId: 'kod/1',
        description: 'Double a number.',
        entryPoint: 'double',
        gtCode: 'def double(x):\n    return 2 * x\n',
        test: 'def check(candidate):\n    assert candidate(2) == 4\n',
        dataSource: 'kodcode',
      },
      {
        questionId: 'kod/2',
        description: 'Double a number.',
        entryPoint: 'halve',
        gtCode: 'def halve(x):\n    """Half of x."""\n    return x / 2\n',
        prompt: 'def halve(x):\n    """Half of x."""\n',
        test: 'def check(candidate):\n    assert candidate(2) == 4\n',
        // A row without a data source belongs to the set named by its file.
        dataSource: 'flat',
      },
    ]);
  });
});

describe('the built-in set', () => {
  it('loads with unique builtin/NNN ids, all from the builtin source', async () => {
    const { problems, report } = await loadProblems('builtin');
    assert.ok(problems.length >= 48, `${problems.length} built-in problems`);
    assert.equal(report.kept, problems.length);
    assert.deepEqual(report.bySource, { builtin: problems.length });
    assert.ok(problems.every((p) => /^builtin\/\d{3}$/.test(p.questionId)));
    assert.equal(new Set(problems.map((p) => p.entryPoint)).size, problems.length);
  });
});
