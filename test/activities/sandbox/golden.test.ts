import { sharedParquet } from '../../support/benchmarks.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { useSandbox } from './helpers.js';

const dataset = sharedParquet;

interface Row {
  data_source: string;
  problem: string;
  GT_code: string;
  test: string;
  extra_info: { function_name: string; question_id: string };
}

/** Every 25th row: HumanEval+ and MBPP+ problems alike, the same sample on every run. */
const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(dataset) })) as unknown as Row[];
const sample = rows.filter((_, i) => i % 25 === 0);

describe('golden tests of HumanEval+ and MBPP+ with their reference solutions', () => {
  const sandbox = useSandbox();

  it('covers both data sets', () => {
    assert.ok(sample.some((r) => r.data_source === 'humanevalplus'));
    assert.ok(sample.some((r) => r.data_source === 'mbppplus'));
  });

  for (const row of sample) {
    it(`passes ${row.extra_info.question_id}`, async () => {
      const reference = row.data_source === 'humanevalplus' ? row.problem + row.GT_code : row.GT_code;
      const program = `${reference}\n\n${row.test}\n\ncheck(${row.extra_info.function_name})\n`;
      const result = await sandbox.get().runProgram(program, { timeoutMs: 60_000, memoryMb: 2048 });
      assert.equal(result.status, 'ok', result.stderr.slice(-2000));
    });
  }
});
