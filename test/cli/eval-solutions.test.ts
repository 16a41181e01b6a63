import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadProblems } from '../../activities/dataset/index.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const dataset = fileURLToPath(new URL('../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'code-a1-eval-cli-'));
after(() => rm(dir, { recursive: true, force: true }));

const { problems } = await loadProblems(dataset);
const humaneval = problems.find((p) => p.questionId === 'HumanEval/0')!;
const mbpp = problems.find((p) => p.dataSource === 'mbppplus')!;

/** Runs `code-a1 eval-solutions` on a JSONL text; never throws, returns exit code and output. */
async function evalSolutions(jsonl: string, ...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.jsonl`);
  await writeFile(file, jsonl);
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'eval-solutions', '--dataset', dataset, '--solutions', file, ...extra]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const line = (questionId: string, code: string) => JSON.stringify({ questionId, code });

describe('code-a1 eval-solutions', () => {
  it('prints one result per input line, in input order, and the pass rate', async () => {
    const details = join(dir, 'details.json');
    const { code, stdout } = await evalSolutions(
      [
        line(mbpp.questionId, mbpp.gtCode),
        line(humaneval.questionId, 'def has_close_elements(numbers, threshold):\n    return False\n'),
        '',
        line(humaneval.questionId, humaneval.gtCode),
        line(humaneval.questionId, 'import sys\nsys.exit(0)\n'),
      ].join('\n'),
      '--details', details,
    );
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), {
      results: [
        { questionId: mbpp.questionId, passed: true, outcome: 'pass' },
        { questionId: 'HumanEval/0', passed: false, outcome: 'fail' },
        { questionId: 'HumanEval/0', passed: true, outcome: 'pass' },
        { questionId: 'HumanEval/0', passed: false, outcome: 'error' },
      ],
      passRate: 0.5,
    });
    const report = JSON.parse(await readFile(details, 'utf8'));
    assert.match(report.results[3].detail, /before the golden tests ran/);
  });

  it('exits 2 naming the question ids the dataset lacks', async () => {
    const { code, stdout, stderr } = await evalSolutions([line('HumanEval/0', humaneval.gtCode), line('HumanEval/9999', 'x = 1')].join('\n'));
    assert.equal(code, 2);
    assert.equal(stdout, '');
    assert.match(stderr, /unknown question ids: "HumanEval\/9999"/);
  });

  it('exits 2 on a line that is not a solution object, naming the line', async () => {
    const { code, stderr } = await evalSolutions(`${line('HumanEval/0', 'x = 1')}\n{"questionId": "HumanEval/0"}\n`);
    assert.equal(code, 2);
    assert.match(stderr, /line 2 must be an object with string fields questionId and code/);
  });

  it('exits 2 when a file cannot be read', async () => {
    const missing = await evalSolutions(line('HumanEval/0', 'x = 1'), '--dataset', join(dir, 'absent.parquet'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.parquet not found/);
    try {
      await promisify(execFile)(process.execPath, [bin, 'eval-solutions', '--dataset', dataset, '--solutions', join(dir, 'absent.jsonl')]);
      assert.fail('expected a non-zero exit');
    } catch (err) {
      const e = err as { code: number; stderr: string };
      assert.equal(e.code, 2);
      assert.match(e.stderr, /cannot read --solutions/);
    }
  });
});
