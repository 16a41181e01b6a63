import { describe, it } from 'node:test';
import { scoreProblem } from '../../../activities/scoring/index.js';
import type { AssertExecution, ResponseScore } from '../../../activities/scoring/index.js';
import { candidate, entry, fail, invalid, near, options, pass, problem, response, t } from './fixtures.js';

interface Case {
  name: string;
  asserts: AssertExecution[];
  book?: number;
  bookPassed?: boolean[];
  valid?: boolean;
  nonprintable?: number;
  T?: number;
  expected: Partial<ResponseScore> & { rewardA: number };
}

// One candidate, one response; book tests are t(100), t(101), … at descending frequency so
// that `bookPassed[i]` refers to t(100 + i). Numbers worked by hand from docs/code-a1.md §6.
const cases: Case[] = [
  {
    name: 'with neither Mistake Book nor valid tests every reward is zero',
    asserts: [],
    expected: { valid: 0, genPass: 0, genFail: 0, atkPass: 0, atkFail: 0, codeReward: 0, rewardB: 0, rewardA: 0 },
  },
  {
    name: 'with only generated tests the code earns genPass and the test earns genFail',
    asserts: [pass(t(1)), fail(t(2))],
    expected: { valid: 0.25, genPass: 0.5, genFail: 0.125, codeReward: 0.5, rewardB: 0.5 * 0.25 + 0.5 * 0.125, rewardA: 0.5 },
  },
  {
    name: 'with only Mistake Book tests the code earns atkPass and the attack term is zero',
    asserts: [invalid('assert f(1) == 3')],
    book: 1,
    bookPassed: [true],
    expected: { valid: 0, invalid: 1, atkPass: 1, atkFail: 0, codeReward: 1, rewardB: 0, rewardA: 1 },
  },
  {
    name: 'with both the code reward averages and the attack discounts what the book already caught',
    asserts: [fail(t(1)), fail(t(2)), pass(t(3)), invalid('assert f(9) == 0')],
    book: 2,
    bookPassed: [true, false],
    expected: { valid: 0.375, genPass: 1 / 3, genFail: 0.25, atkPass: 0.5, atkFail: 0.5, codeReward: (0.5 + 1 / 3) / 2, rewardB: 0.5 * 0.375 + 0.5 * ((0.25 - 0.5 + 1) / 2), rewardA: (0.5 + 1 / 3) / 2 },
  },
  {
    name: 'an invalid candidate passes nothing whatever the record says and its tests earn only the penalty',
    asserts: [pass(t(1)), pass(t(2))],
    book: 1,
    bookPassed: [true],
    valid: false,
    nonprintable: 0.1,
    expected: { valid: 0.25, genPass: 0, genFail: 0.25, atkPass: 0, codeReward: 0, rewardB: -0.1, failed: 2, rewardA: 0 },
  },
  {
    name: 'a later copy of a canonical test is invalid and counted once',
    asserts: [pass(t(1)), pass(t(1)), fail(t(2))],
    expected: { counted: 2, invalid: 1, valid: 0.25, genPass: 0.5, genFail: 0.125, rewardA: 0.5 },
  },
  {
    name: 'only the first T unique valid tests count and extra valid ones are not invalid',
    asserts: [fail(t(1)), pass(t(2)), fail(t(3)), invalid('assert f(0) == 1')],
    T: 2,
    expected: { counted: 2, invalid: 1, valid: 0.5, genPass: 0.5, genFail: 0.5, rewardB: 0.5 * 0.5 + 0.5 * 0.5, rewardA: 0.5 },
  },
  {
    name: 'more invalid asserts than T clamp the validity term at zero',
    asserts: [invalid('a'), invalid('b'), invalid('c'), pass(t(1))],
    T: 2,
    expected: { valid: 0, counted: 1, invalid: 3, genFail: 0, rewardB: 0, rewardA: 1 },
  },
  {
    name: 'the non-printable ratio is subtracted from the test reward',
    asserts: [pass(t(1)), fail(t(2))],
    nonprintable: 0.25,
    expected: { rewardB: 0.5 * 0.25 + 0.5 * 0.125 - 0.25, rewardA: 0.5 },
  },
];

describe('the per-pair reward formulas', () => {
  for (const c of cases) {
    it(c.name, () => {
      const book = Array.from({ length: c.book ?? 0 }, (_, i) => entry(t(100 + i), 10 - i));
      const p = problem([candidate([response(c.asserts, c.nonprintable ?? 0)], c.bookPassed ?? [], c.valid ?? true)], book);
      const scored = scoreProblem(p, options({ testsPerResponse: c.T ?? 8 }));
      const cand = scored.candidates[0]!;
      const { rewardA, ...pair } = c.expected;
      near(cand.rewardA, rewardA, 'rewardA');
      for (const [field, value] of Object.entries(pair)) near(cand.responses[0]![field as keyof ResponseScore], value, field);
    });
  }
});
