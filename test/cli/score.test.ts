import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'code-a1-score-cli-'));
after(() => rm(dir, { recursive: true, force: true }));

/** Runs `code-a1 score --input <file>` on `scenario`; never throws, returns exit code and output. */
async function score(scenario: unknown, ...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, typeof scenario === 'string' ? scenario : JSON.stringify(scenario));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'score', '--input', file, ...extra]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The example scenario. */
const example = () => ({
  alpha: 0.5,
  testsPerResponse: 8,
  mistakeBookTopK: 8,
  updateN: 1,
  problems: [
    {
      questionId: 'q1',
      mistakeBook: [{ test: 'assert f(1) == 2', frequency: 2 }],
      candidates: [
        {
          valid: true,
          mistakeBookPassed: [true],
          responses: [{ nonprintableRatio: 0.0, asserts: [{ test: 'assert f(3) == 4', valid: true, passed: false }] }],
        },
      ],
    },
  ],
});

describe('code-a1 score', () => {
  it('prints the contract shape with rewards, advantages and the updated book', async () => {
    const { code, stdout } = await score(example());
    assert.equal(code, 0);
    // rewardA = (atkPass 1 + genPass 0) / 2; rewardB = 0.5 × valid 1/8 + 0.5 × (genFail 1/8 - atkFail 0 + 1) / 2.
    assert.deepEqual(JSON.parse(stdout), {
      problems: [
        {
          questionId: 'q1',
          codeGroupKept: false,
          testCandidatesKept: [0],
          candidates: [{ rewardA: 0.5, advantageA: 0, responses: [{ rewardB: 0.34375, advantageB: 0 }] }],
          mistakeBook: [
            { test: 'assert f(1) == 2', frequency: 1 },
            { test: 'assert f(3) == 4', frequency: 1 },
          ],
        },
      ],
    });
  });

  it('cuts the printed book to mistakeBookCap', async () => {
    const scenario = { ...example(), mistakeBookCap: 1 };
    const { stdout } = await score(scenario);
    assert.deepEqual(JSON.parse(stdout).problems[0].mistakeBook, [{ test: 'assert f(1) == 2', frequency: 1 }]);
  });

  it('adds every per-pair term with --details', async () => {
    const { stdout } = await score(example(), '--details');
    const pair = JSON.parse(stdout).problems[0].candidates[0].responses[0];
    assert.deepEqual([pair.valid, pair.genPass, pair.genFail, pair.atkPass, pair.atkFail], [0.125, 0, 0.125, 1, 0]);
  });

  const bad: { name: string; edit: (s: ReturnType<typeof example>) => unknown; field: string }[] = [
    { name: 'a non-boolean validity', edit: (s) => ((s.problems[0]!.candidates[0]! as { valid: unknown }).valid = 'yes', s), field: 'problems[0].candidates[0].valid' },
    { name: 'alpha out of range', edit: (s) => ({ ...s, alpha: 1.5 }), field: 'alpha' },
    { name: 'a zero T', edit: (s) => ({ ...s, testsPerResponse: 0 }), field: 'testsPerResponse' },
    { name: 'an unknown field', edit: (s) => ({ ...s, alfa: 0.5 }), field: 'alfa' },
    { name: 'a frequency below one', edit: (s) => ((s.problems[0]!.mistakeBook[0]!.frequency = 0), s), field: 'problems[0].mistakeBook[0].frequency' },
    { name: 'too few Mistake Book outcomes', edit: (s) => ((s.problems[0]!.candidates[0]!.mistakeBookPassed = []), s), field: 'problems[0].candidates[0].mistakeBookPassed' },
    { name: 'a repeated questionId', edit: (s) => ({ ...s, problems: [...s.problems, ...s.problems] }), field: 'problems[1].questionId' },
    { name: 'a valid assert without an outcome', edit: (s) => (delete (s.problems[0]!.candidates[0]!.responses[0]!.asserts[0] as { passed?: boolean }).passed, s), field: 'problems[0].candidates[0].responses[0].asserts[0].passed' },
  ];
  for (const c of bad) {
    it(`exits non-zero naming the field for ${c.name}`, async () => {
      const { code, stdout, stderr } = await score(c.edit(example()));
      assert.notEqual(code, 0);
      assert.equal(stdout, '');
      assert.ok(stderr.includes(c.field), stderr);
    });
  }

  it('exits non-zero on a file that is not JSON', async () => {
    const { code, stderr } = await score('{ not json');
    assert.notEqual(code, 0);
    assert.match(stderr, /cannot read/);
  });
});
