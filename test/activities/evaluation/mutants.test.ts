import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadProblems } from '../../../activities/dataset/index.js';
import {
  GoldenRunner,
  hasGoldenTests,
  mutantSet,
  rawMutants,
  scoreTestResponses,
  testGenerationScores,
  type GoldenProblem,
} from '../../../activities/evaluation/index.js';
import { useSandbox } from '../sandbox/helpers.js';

const dataset = fileURLToPath(new URL('../../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));
/** Every 120th row: five references of both benchmarks. */
const sample = (await loadProblems(dataset)).problems.filter((p, i) => i % 120 === 0 && hasGoldenTests(p)) as GoldenProblem[];

/** `x * 1` to `x / 1` returns 3.0 for 3, which the golden test's == cannot tell from 3. */
const scale: GoldenProblem = {
  questionId: 'toy/scale',
  description: 'Return x, clamped below at 0.',
  entryPoint: 'scale',
  gtCode: 'def scale(x):\n    """Clamp."""\n    y = x * 1\n    if y < 0 and not x > 0:\n        y = 0\n    return y\n',
  test: 'def check(candidate):\n    for x in [3, -2, 0, 7]:\n        assert candidate(x) == max(x, 0)\n',
  dataSource: 'toy',
};

describe('mutants of a reference', () => {
  const sandbox = useSandbox({ concurrency: 2 });

  it('cover every operator, each mutant distinct, compilable and different from the reference, the same on every run', async () => {
    const first = await rawMutants(sandbox.get(), scale.gtCode, 100);
    assert.deepEqual(await rawMutants(sandbox.get(), scale.gtCode, 100), first);
    assert.deepEqual(
      [...new Set(first.mutants.map((m) => m.operator))].sort(),
      ['arithmetic', 'boolean', 'comparison', 'constant', 'return', 'statement'],
    );
    // Every 120th of the 542 problems: 0, 120, 240, 360 and 480, all with golden tests.
    assert.equal(sample.length, 5);
    for (const problem of sample) {
      const { mutants } = await rawMutants(sandbox.get(), problem.gtCode);
      assert.ok(mutants.length > 0, problem.questionId);
      assert.equal(new Set(mutants.map((m) => m.source)).size, mutants.length, problem.questionId);
      const program = `for s in ${JSON.stringify(mutants.map((m) => m.source))}:\n    compile(s, "<mutant>", "exec")\n`;
      const compiled = await sandbox.get().runProgram(program);
      assert.equal(compiled.status, 'ok', `${problem.questionId}: ${compiled.stderr}`);
      assert.ok(!mutants.some((m) => m.source === problem.gtCode));
    }
  });

  it('are none, with the reason, for a reference that does not parse', async () => {
    const { mutants, error } = await rawMutants(sandbox.get(), 'def f(:\n    return 1\n');
    assert.deepEqual(mutants, []);
    assert.match(error!, /SyntaxError/);
  });

  it('drop mutants that pass the golden tests and keep those that fail them', async () => {
    const runner = new GoldenRunner(sandbox.get(), { floorMs: 5_000, factor: 4, referenceMs: 10_000 });
    const set = await mutantSet(runner, sandbox.get(), scale, 100);
    assert.ok(set.equivalent >= 1);
    assert.equal(set.generated, set.equivalent + set.mutants.length);
    assert.ok(!set.mutants.some((m) => m.source.includes('y = x / 1')), 'x / 1 equals x on the golden inputs');
    assert.ok(set.mutants.some((m) => m.source.includes('y = x * 2')));
    for (const m of set.mutants) assert.notEqual((await runner.run(scale, m.source)).outcome, 'pass');
  });
});

describe('test responses scored against the reference and its mutants', () => {
  const sandbox = useSandbox({ concurrency: 2 });
  const mutants = [
    { site: 0, operator: 'comparison' as const, source: 'def scale(x):\n    return x if x >= 1 else 0\n' },
    { site: 1, operator: 'constant' as const, source: 'def scale(x):\n    return x if x > -5 else 0\n' },
  ];

  it('count a response valid only when all its asserts hold on the reference, and kill mutants with valid tests only', async () => {
    const score = await scoreTestResponses(sandbox.get(), scale, [
      '```python\nassert scale(0) == 0\nassert scale(0) == 0\nassert scale(4) == 4\n```', // valid (a duplicate is still true); kills neither
      '```python\nassert scale(-3) == 0\nassert scale(2) == 3\n```', // invalid (2 != 3), but its valid test kills the second mutant
      'no tests here',
    ], mutants);
    assert.deepEqual(score.validResponses, [true, false, false]);
    assert.equal(score.passAtK, 1);
    assert.equal(score.killed, 1);
    assert.equal(score.mutAtK, 0.5);
  });

  it('report pass@k, mut@k and Mul = pass@k x mut@k / 100 in percent', () => {
    const base = { validResponses: [], killed: 0, mutants: 0 };
    assert.deepEqual(
      testGenerationScores([
        { ...base, questionId: 'a', passAtK: 1, mutAtK: 0.5 },
        { ...base, questionId: 'b', passAtK: 0, mutAtK: 0.25 },
        { ...base, questionId: 'c', passAtK: 1, mutAtK: null },
      ]),
      // pass@k = 2/3 = 66.67%; mut@k over a and b = 37.5%; Mul = 66.67 x 37.5 / 100 = 25.
      { problems: 3, passAtK: 200 / 3, mutAtK: 37.5, mul: 25 },
    );
  });
});
