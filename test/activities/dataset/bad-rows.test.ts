import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DatasetError, loadProblems } from '../../../activities/dataset/index.js';
import { benchmarkRow, flatRow, sharedParquet, tempDir, writeJsonl } from './helpers.js';

let dir: string;
before(async () => {
  dir = await tempDir();
});

/** Loads `rows` as JSONL and returns the DatasetError it must fail with. */
async function failure(rows: readonly unknown[], options: Parameters<typeof loadProblems>[1] = {}): Promise<DatasetError> {
  const path = await writeJsonl(dir, `rows-${randomUUID()}.jsonl`, rows);
  try {
    await loadProblems(path, options);
  } catch (err) {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.equal(err.name, 'DatasetError');
    return err;
  }
  assert.fail('the dataset loaded although it has bad rows');
}

describe('a dataset with a bad row', () => {
  // Each case: a bad row placed at index 1 between good rows, and what the message must say.
  const cases: { name: string; row: unknown; says: RegExp }[] = [
    { name: 'a missing reference', row: benchmarkRow('q/1', { GT_code: undefined }), says: /row 1, line 2, question "q\/1": GT_code: missing/ },
    { name: 'a non-string description', row: benchmarkRow('q/1', { description: 42 }), says: /row 1, line 2, question "q\/1": description: expected a string, got a number/ },
    { name: 'an empty description', row: benchmarkRow('q/1', { description: '  ' }), says: /description: empty/ },
    { name: 'no question id', row: benchmarkRow('q/1', { extra_info: { function_name: 'add' } }), says: /row 1, line 2: extra_info\.question_id: missing/ },
    { name: 'no extra_info at all', row: benchmarkRow('q/1', { extra_info: null }), says: /row 1, line 2: extra_info: missing/ },
    {
      name: 'an entry point that is not an identifier',
      row: benchmarkRow('q/1', { extra_info: { function_name: 'add two', question_id: 'q/1' } }),
      says: /question "q\/1": extra_info\.function_name: not a Python identifier: "add two"/,
    },
    {
      name: 'a reference that never defines the entry point',
      row: benchmarkRow('q/1', { GT_code: 'def plus(a, b):\n    return a + b\n', problem: undefined }),
      says: /question "q\/1": GT_code: does not define add\(\) at top level, and the row has no problem header/,
    },
    {
      name: 'a body whose header defines another function',
      row: benchmarkRow('q/1', { GT_code: '    return a + b\n', problem: 'def plus(a, b):\n' }),
      says: /GT_code: does not define add\(\) at top level, not even after its problem header/,
    },
    { name: 'golden tests without check()', row: benchmarkRow('q/1', { test: 'assert add(1, 2) == 3\n' }), says: /question "q\/1": test: defines no top-level check\(candidate\)/ },
    { name: 'a flat row without an entry point', row: flatRow('k/1', { entryPoint: undefined }), says: /question "k\/1": entryPoint: missing/ },
    { name: 'a row of neither shape', row: { id: 1, code: 'x' }, says: /row 1, line 2: \(row\): matches neither row shape/ },
    { name: 'a row that is not an object', row: ['a', 'b'], says: /row 1, line 2: \(row\): expected an object, got an array/ },
  ];
  for (const { name, row, says } of cases) {
    it(`fails naming the row and field when it has ${name}`, async () => {
      const err = await failure([benchmarkRow('q/0'), row, benchmarkRow('q/2')]);
      assert.match(err.message, /1 of 3 rows are invalid/);
      assert.match(err.message, says);
      assert.equal(err.issues.length, 1);
      assert.equal(err.issues[0]!.row, 1);
    });
  }

  it('names the line of a row that is not valid JSON, counting blank lines', async () => {
    const path = join(dir, 'broken.jsonl');
    await writeFile(path, `${JSON.stringify(benchmarkRow('q/0'))}\n\n{"description": \n`);
    await assert.rejects(loadProblems(path), /row 1, line 3: \(row\): not valid JSON/);
  });

  it('lists every field that is wrong in one row', async () => {
    const err = await failure([benchmarkRow('q/0', { description: null, test: 7 })]);
    assert.deepEqual(
      err.issues.map((issue) => issue.field),
      ['description', 'test'],
    );
  });

  it('lists only the first bad rows in the message but keeps all of them on the error', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => benchmarkRow(`q/${i}`, { GT_code: 7 }));
    const err = await failure(rows, { maxListed: 5 });
    assert.match(err.message, /30 of 30 rows are invalid/);
    assert.match(err.message, /row 4, /);
    assert.doesNotMatch(err.message, /row 5, /);
    assert.match(err.message, /… and 25 more/);
    assert.equal(err.issues.length, 30);
  });

  it('fails on a duplicate question id, naming both rows, even when bad rows are skipped', async () => {
    const err = await failure([benchmarkRow('q/0'), benchmarkRow('q/1'), flatRow('q/0')], { badRows: 'skip' });
    assert.match(err.message, /question ids must be unique/);
    assert.match(err.message, /row 2, line 3, question "q\/0": question id: duplicates row 0/);
  });
});

describe('skipping bad rows on request', () => {
  it('leaves them out and counts and describes them in the report', async () => {
    const path = await writeJsonl(dir, 'mixed.jsonl', [benchmarkRow('q/0'), benchmarkRow('q/1', { GT_code: null }), flatRow('k/0')]);
    const { problems, report } = await loadProblems(path, { badRows: 'skip' });
    assert.deepEqual(
      problems.map((p) => p.questionId),
      ['q/0', 'k/0'],
    );
    assert.equal(report.rowsRead, 3);
    assert.equal(report.badRows, 1);
    assert.equal(report.kept, 2);
    assert.deepEqual(report.badRowExamples, ['row 1, line 2, question "q/1": GT_code: missing']);
  });

  it('still fails when no valid row is left', async () => {
    await assert.rejects(loadProblems(await writeJsonl(dir, 'all-bad.jsonl', [{ x: 1 }]), { badRows: 'skip' }), /no valid rows \(1 of 1 invalid\)/);
  });
});

describe('a dataset that cannot be read', () => {
  it('fails when the file does not exist', async () => {
    await assert.rejects(loadProblems(join(dir, 'absent.jsonl')), (err: Error) => err instanceof DatasetError && /not found/.test(err.message));
  });

  it('fails when a .parquet file is not parquet', async () => {
    const path = join(dir, 'fake.parquet');
    await writeFile(path, '{"a": 1}\n');
    await assert.rejects(loadProblems(path), /is named \.parquet but is not a parquet file/);
  });

  it('fails when a parquet file is cut short', async () => {
    const bytes = await readFile(sharedParquet);
    const path = join(dir, 'cut.parquet');
    // Keep both magics so the damage is found by the decoder, not the format check.
    await writeFile(path, Buffer.concat([bytes.subarray(0, 4096), bytes.subarray(bytes.length - 4)]));
    await assert.rejects(loadProblems(path), (err: Error) => err instanceof DatasetError && /cannot decode parquet/.test(err.message));
  });

  it('fails when the format cannot be told', async () => {
    const path = join(dir, 'notes.txt');
    await writeFile(path, 'just some text\n');
    await assert.rejects(loadProblems(path), /cannot tell the format/);
  });

  it('fails on an empty file and on an unsupported URI scheme', async () => {
    const path = join(dir, 'empty.jsonl');
    await writeFile(path, '\n\n');
    await assert.rejects(loadProblems(path), /has no rows/);
    await assert.rejects(loadProblems('https://example.com/set.parquet'), /unsupported scheme https/);
  });
});
