import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { Problem } from '../../../activities/records.js';
import { readFile } from 'node:fs/promises';
import { loadProblems } from '../../../activities/dataset/index.js';
import { builtinDatasetPath } from '../../../activities/dataset/builtin.js';
import type { PythonResult } from '../../support/python-runner.js';
import { runPython } from '../../support/python-runner.js';

/** The reference (or a stand-in) followed by the golden tests, run against the entry point. */
function program(solution: string, problem: Problem): string {
  return `${solution}\n\n${problem.test!}\n\ncheck(${problem.entryPoint})\n`;
}

/** A plausible wrong answer: right name and arity-agnostic, returns nothing useful. */
function returnsNone(problem: Problem): string {
  return `def ${problem.entryPoint}(*args, **kwargs):\n    return None\n`;
}

/** Runs one program per problem, two at a time: the machines running tests have two cores. */
async function runAll(problems: readonly Problem[], source: (p: Problem) => string): Promise<Map<string, PythonResult>> {
  const results = new Map<string, PythonResult>();
  let next = 0;
  const worker = async () => {
    while (next < problems.length) {
      const problem = problems[next++]!;
      results.set(problem.questionId, await runPython(program(source(problem), problem), { timeoutMs: 20_000 }));
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

describe('the built-in golden tests', () => {
  let problems: Problem[];
  before(async () => {
    ({ problems } = await loadProblems('builtin'));
  });

  it('exist for every problem and hold at least six asserts', async () => {
    const rows = (await readFile(builtinDatasetPath, 'utf8')).split('\n').filter((line) => line.trim() !== '');
    assert.equal(problems.length, rows.length, 'every row of the data file is a problem');
    for (const problem of problems) {
      assert.ok(problem.test, `${problem.questionId} has no golden tests`);
      assert.ok((problem.test.match(/\bassert\b/g) ?? []).length >= 6, `${problem.questionId} has fewer than 6 asserts`);
    }
  });

  it('pass every reference solution', async () => {
    const results = await runAll(problems, (p) => p.gtCode);
    assert.equal(results.size, problems.length);
    const failed = [...results].filter(([, r]) => !r.ok).map(([id, r]) => `${id}: ${r.timedOut ? 'timed out' : r.stderr.trim().split('\n').at(-1)}`);
    assert.deepEqual(failed, []);
  });

  it('fail a solution that returns None, for every problem', async () => {
    const results = await runAll(problems, returnsNone);
    assert.equal(results.size, problems.length);
    const passed = [...results].filter(([, r]) => r.ok).map(([id]) => id);
    assert.deepEqual(passed, []);
    for (const [id, r] of results) assert.match(r.stderr, /AssertionError|TypeError/, `${id} failed for another reason: ${r.stderr}`);
  });
});
