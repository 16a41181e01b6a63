import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ScoringInputError, scoreBatch, scoreProblem } from '../../../activities/scoring/index.js';
import { candidate, entry, fail, invalid, near, options, pass, problem, response, t } from './fixtures.js';

/** A valid candidate whose one response yields the given code reward through genPass. */
const scoring = (passes: number, fails: number) =>
  candidate([response([...Array.from({ length: passes }, (_, i) => pass(t(i))), ...Array.from({ length: fails }, (_, i) => fail(t(50 + i)))])]);

describe('the Code LLM group', () => {
  it('gets (r - mean) / (population std + 1e-6) advantages', () => {
    const scored = scoreProblem(problem([scoring(1, 0), scoring(0, 1), scoring(1, 1), scoring(1, 1)]), options());
    const std = Math.sqrt(0.125);
    const expected = [0.5 / (std + 1e-6), -0.5 / (std + 1e-6), 0, 0];
    assert.equal(scored.codeGroupKept, true);
    scored.candidates.forEach((c, i) => near(c.advantageA, expected[i]!, `advantageA[${i}]`));
  });

  it('is dropped with zero advantages when every candidate scores the same', () => {
    const scored = scoreProblem(problem([scoring(1, 0), scoring(2, 0)]), options());
    assert.equal(scored.codeGroupKept, false);
    assert.deepEqual(scored.candidates.map((c) => c.advantageA), [0, 0]);
  });

  it('is kept when the zero-variance filter is off', () => {
    const scored = scoreProblem(problem([scoring(1, 0), scoring(2, 0)]), options({ dropZeroVarianceGroups: false }));
    assert.equal(scored.codeGroupKept, true);
  });
});

describe('the Test LLM groups', () => {
  // Response rewards: candidate 0 spreads (0.75 vs 0), candidate 1 is constant, candidate 2 spreads like 0.
  const spread = () => candidate([response([fail(t(1)), fail(t(2)), fail(t(3)), fail(t(4)), fail(t(5)), fail(t(6)), fail(t(7)), fail(t(8))]), response([])]);
  const flat = () => candidate([response([]), response([])]);
  const cases = [
    { name: 'keep the updateN candidates with the largest std, ties to the lower index', updateN: 1, kept: [0] },
    { name: 'are listed ascending when several are kept', updateN: 2, kept: [0, 2] },
    { name: 'are all kept when there are no more candidates than updateN', updateN: 3, kept: [0, 1, 2] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const scored = scoreProblem(problem([spread(), flat(), spread()]), options({ updateN: c.updateN }));
      assert.deepEqual(scored.testCandidatesKept, c.kept);
      scored.candidates.forEach((cand, i) => {
        const sum = cand.responses.reduce((s, r) => s + Math.abs(r.advantageB), 0);
        assert.equal(sum > 0, c.kept.includes(i) && i !== 1, `candidate ${i} advantages`);
      });
    });
  }
});

describe('the Mistake Book update', () => {
  it('decrements every passed top-K test before incrementing every failed counted test', () => {
    const scored = scoreProblem(
      problem(
        [
          // Top-K order is b (3), then a (1): passes both.
          candidate([response([])], [true, true]),
          // Passes b, fails a; writes a failing copy of a (starts again at 1 after removal) and c.
          candidate([response([fail('a'), fail('c')])], [true, false]),
          candidate([response([fail('c')])], [false, false]),
          // Invalid: its outcomes change nothing.
          candidate([response([fail('d')])], [true, true], false),
        ],
        [entry('a', 1), entry('b', 3)],
      ),
      options(),
    );
    assert.deepEqual(scored.mistakeBook, [entry('c', 2), entry('a', 1), entry('b', 1)]);
  });

  it('replays the top K by frequency with ties broken by text, whatever order the record lists them in', () => {
    const scored = scoreProblem(problem([candidate([response([])], [true, false])], [entry('z', 1), entry('a', 1), entry('m', 3)]), options({ mistakeBookTopK: 2 }));
    assert.equal(scored.bookTests, 2);
    assert.deepEqual(scored.mistakeBook, [entry('m', 2), entry('a', 1), entry('z', 1)]);
  });

  it('evicts the lowest frequency first, and among equals the later text', () => {
    const scored = scoreProblem(problem([candidate([response([fail('y'), fail('x')])], [false, false])], [entry('k', 5), entry('b', 1)]), options({ mistakeBookCap: 3 }));
    assert.deepEqual(scored.mistakeBook, [entry('k', 5), entry('b', 1), entry('x', 1)]);
  });

  it('retires a problem after blacklistAfter clean iterations in a row and resets the streak otherwise', () => {
    const clean = problem([candidate([response([pass(t(1))])])]);
    const dirty = problem([candidate([response([fail(t(1))])])]);
    const nobodyValid = problem([candidate([response([pass(t(1))])], [], false)]);
    const opts = options({ blacklistAfter: 2 });
    const first = scoreProblem(clean, opts);
    assert.deepEqual([first.cleanStreak, first.retired], [1, false]);
    const second = scoreProblem(clean, opts, first);
    assert.deepEqual([second.cleanStreak, second.retired], [2, true]);
    assert.equal(scoreProblem(dirty, opts, first).cleanStreak, 0);
    assert.equal(scoreProblem(nobodyValid, opts, first).cleanStreak, 0);
    assert.equal(scoreProblem(clean, options(), second).retired, true, 'retirement is permanent');
  });
});

describe('inconsistent input', () => {
  const cases = [
    { name: 'a valid candidate without one outcome per top-K test', p: problem([candidate([response([])], [])], [entry('a', 1)]), field: 'problems[0].candidates[0].mistakeBookPassed' },
    { name: 'a test listed twice in the Mistake Book', p: problem([candidate([response([])], [true])], [entry('a', 1), entry('a', 2)]), field: 'problems[0].mistakeBook[1].test' },
    { name: 'a valid assert of a valid candidate without an outcome', p: problem([candidate([response([{ test: 'a', valid: true }])])]), field: 'problems[0].candidates[0].responses[0].asserts[0].passed' },
  ];
  for (const c of cases) {
    it(`is rejected naming the field: ${c.name}`, () => {
      assert.throws(() => scoreBatch([c.p], options()), (err: unknown) => err instanceof ScoringInputError && err.field === c.field);
    });
  }

  it('accepts an invalid candidate with no Mistake Book outcomes, since nothing ran', () => {
    const scored = scoreProblem(problem([candidate([response([invalid('x')])], [], false)], [entry('a', 1)]), options());
    assert.equal(scored.candidates[0]!.rewardA, 0);
  });
});
