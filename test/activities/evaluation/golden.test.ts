import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadProblems } from '../../../activities/dataset/index.js';
import {
  classify,
  drawExitCodes,
  evaluateSolutions,
  GoldenRunner,
  hasGoldenTests,
  timeLimitMs,
  UnknownProblemError,
  type GoldenProblem,
} from '../../../activities/evaluation/index.js';
import type { Problem } from '../../../activities/records.js';
import { useSandbox } from '../sandbox/helpers.js';

const dataset = fileURLToPath(new URL('../../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));
const { problems } = await loadProblems(dataset);
/**
 * Every 45th row: HumanEval+ and MBPP+ problems alike (13 of 542), the same sample on every run;
 * plus MBPP/56, whose function is itself named `check` like the golden test's.
 */
const sample = problems.filter((p, i) => i % 45 === 0 || p.questionId === 'MBPP/56');

/** A small problem whose golden test has the benchmarks' shape. */
const add: GoldenProblem = {
  questionId: 'toy/add',
  description: 'Add two numbers.',
  entryPoint: 'add',
  gtCode: 'def add(a, b):\n    return a + b\n',
  test: 'def check(candidate):\n    for a, b in [(1, 2), (-3, 3), (10, 5)]:\n        assert candidate(a, b) == a + b\n',
  dataSource: 'toy',
};

describe('golden-test outcomes', () => {
  it('draws three distinct exit codes clear of 0, 1, 2 and the signal range', () => {
    fc.assert(
      fc.property(fc.constant(null), () => {
        const { pass, fail, error } = drawExitCodes();
        assert.equal(new Set([pass, fail, error]).size, 3);
        for (const code of [pass, fail, error]) assert.ok(code >= 16 && code < 128);
      }),
      { numRuns: 500 },
    );
  });

  it('count an exit with status 0 as an error: the program stopped before the epilogue', () => {
    const codes = { pass: 40, fail: 41, error: 42 };
    assert.equal(classify({ status: 'ok', exitCode: 0 }, codes), 'error');
    assert.equal(classify({ status: 'error', exitCode: 40 }, codes), 'pass');
    assert.equal(classify({ status: 'error', exitCode: 41 }, codes), 'fail');
    assert.equal(classify({ status: 'error', exitCode: 7 }, codes), 'error');
    assert.equal(classify({ status: 'killed', exitCode: null }, codes), 'error');
    assert.equal(classify({ status: 'timeout', exitCode: null }, codes), 'timeout');
  });

  it('scale the time limit with the reference, between the floor and the measuring limit', () => {
    const policy = { floorMs: 10_000, factor: 4, referenceMs: 60_000 };
    assert.equal(timeLimitMs(policy, 40), 10_000);
    assert.equal(timeLimitMs(policy, 5_000), 20_000);
    assert.equal(timeLimitMs(policy, 60_000), 60_000);
  });
});

describe('solutions run against golden tests in the sandbox', () => {
  const sandbox = useSandbox({ concurrency: 2 });

  it('pass with the reference solutions of a sample of HumanEval+ and MBPP+', async () => {
    assert.ok(sample.some((p) => p.dataSource === 'humanevalplus') && sample.some((p) => p.dataSource === 'mbppplus'));
    const report = await evaluateSolutions(sandbox.get(), problems, sample.map((p) => ({ questionId: p.questionId, code: p.gtCode })));
    assert.deepEqual(report.results.filter((r) => !r.passed).map((r) => `${r.questionId}: ${r.detail}`), []);
    assert.equal(report.passRate, 1);
    assert.deepEqual(report.failedReferences, []);
  });

  it('fail a hand-broken solution of a benchmark problem and keep the input order', async () => {
    const [first, second] = sample as [Problem, Problem, ...Problem[]];
    const broken = `def ${first.entryPoint}(*args, **kwargs):\n    return None\n`;
    const report = await evaluateSolutions(sandbox.get(), problems, [
      { questionId: first.questionId, code: broken },
      { questionId: second.questionId, code: second.gtCode },
      { questionId: first.questionId, code: first.gtCode },
    ]);
    assert.deepEqual(report.results.map((r) => [r.questionId, r.outcome]), [
      [first.questionId, 'fail'],
      [second.questionId, 'pass'],
      [first.questionId, 'pass'],
    ]);
    assert.equal(report.passRate, 2 / 3);
  });

  it('tell failures, errors, early exits and timeouts apart', async () => {
    const runner = new GoldenRunner(sandbox.get(), { floorMs: 1_500, factor: 4, referenceMs: 5_000 });
    const outcome = async (code: string) => (await runner.run(add, code)).outcome;
    assert.equal(await outcome(add.gtCode), 'pass');
    assert.equal(await outcome('def add(a, b):\n    return a - b\n'), 'fail');
    assert.equal(await outcome('def add(a, b):\n    return a +\n'), 'error');
    assert.equal(await outcome('def add(a, b):\n    raise ValueError("no")\n'), 'error');
    assert.equal(await outcome('def add(a, b):\n    return a + b\nimport sys\nsys.exit(0)\n'), 'error');
    assert.equal(await outcome('def add(a, b):\n    return a + b\nimport os\nos._exit(0)\n'), 'error');
    assert.equal(await outcome('def add(a, b):\n    return a + b\nif __name__ == "__main__":\n    exit()\n'), 'error');
    assert.equal(await outcome('def add(a, b):\n    while True:\n        pass\n'), 'timeout');
  });

  it('rejects solutions of unknown problems before running any', async () => {
    await assert.rejects(
      evaluateSolutions(sandbox.get(), problems, [{ questionId: 'HumanEval/0', code: '' }, { questionId: 'nope/1', code: '' }]),
      (err: Error) => err instanceof UnknownProblemError && /"nope\/1"/.test(err.message),
    );
    assert.equal(hasGoldenTests({ ...add, test: undefined } as Problem), false);
  });
});
