import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { scoreProblem, scoreBatch } from '../../../activities/scoring/index.js';
import type { ProblemExecution, ScoringOptions } from '../../../activities/scoring/index.js';
import { compareEntries, topK } from '../../../activities/mistake-book/index.js';
import { t } from './fixtures.js';

// Texts come from a small pool so that duplicates, book hits and repeated failures all happen.
const text = fc.integer({ min: 0, max: 9 }).map(t);

const optionsArb: fc.Arbitrary<ScoringOptions> = fc.record({
  alpha: fc.double({ min: 0, max: 1, noNaN: true }),
  testsPerResponse: fc.integer({ min: 1, max: 8 }),
  mistakeBookTopK: fc.integer({ min: 0, max: 8 }),
  updateN: fc.integer({ min: 1, max: 4 }),
  mistakeBookCap: fc.integer({ min: 1, max: 10 }),
  dropZeroVarianceGroups: fc.boolean(),
  blacklistAfter: fc.integer({ min: 0, max: 3 }),
});

const assertArb = fc.oneof(
  fc.record({ test: text, valid: fc.constant(true), passed: fc.boolean() }),
  fc.record({ test: fc.string({ maxLength: 6 }), valid: fc.constant(false) }),
);

function problemArb(opts: ScoringOptions): fc.Arbitrary<ProblemExecution> {
  return fc.uniqueArray(fc.record({ test: text, frequency: fc.integer({ min: 1, max: 5 }) }), { selector: (e) => e.test, maxLength: 10 }).chain((book) => {
    const replayed = topK(book, opts.mistakeBookTopK).length;
    const cand = fc.record({
      valid: fc.boolean(),
      mistakeBookPassed: fc.array(fc.boolean(), { minLength: replayed, maxLength: replayed }),
      responses: fc.array(fc.record({ nonprintableRatio: fc.double({ min: 0, max: 0.2, noNaN: true }), asserts: fc.array(assertArb, { maxLength: 12 }) }), { minLength: 1, maxLength: 4 }),
    });
    return fc.record({ questionId: fc.constant('q'), mistakeBook: fc.shuffledSubarray(book, { minLength: book.length, maxLength: book.length }), candidates: fc.array(cand, { minLength: 1, maxLength: 5 }) });
  });
}

const scenario = optionsArb.chain((opts) => fc.tuple(fc.constant(opts), problemArb(opts)));
const inUnit = (x: number) => x >= 0 && x <= 1;

describe('scoring, for any execution outcomes', () => {
  it('keeps every term in [0, 1], rewardA in [0, 1] and rewardB in [-1, 1]', () => {
    fc.assert(
      fc.property(scenario, ([opts, p]) => {
        for (const c of scoreProblem(p, opts).candidates) {
          assert.ok(inUnit(c.rewardA));
          for (const r of c.responses) {
            for (const x of [r.valid, r.genPass, r.genFail, r.atkPass, r.atkFail, r.codeReward]) assert.ok(inUnit(x));
            assert.ok(r.rewardB >= -1 && r.rewardB <= 1);
          }
        }
      }),
    );
  });

  it('gives advantages that sum to about zero in every kept group and exactly zero elsewhere', () => {
    fc.assert(
      fc.property(scenario, ([opts, p]) => {
        const s = scoreProblem(p, opts);
        const sumA = s.candidates.reduce((sum, c) => sum + c.advantageA, 0);
        if (s.codeGroupKept) assert.ok(Math.abs(sumA) < 1e-6);
        else assert.ok(s.candidates.every((c) => c.advantageA === 0));
        s.candidates.forEach((c, i) => {
          const sumB = c.responses.reduce((sum, r) => sum + r.advantageB, 0);
          if (s.testCandidatesKept.includes(i)) assert.ok(Math.abs(sumB) < 1e-6);
          else assert.ok(c.responses.every((r) => r.advantageB === 0));
        });
      }),
    );
  });

  it('leaves a sorted, capped book whose frequencies are integers of at least 1', () => {
    fc.assert(
      fc.property(scenario, ([opts, p]) => {
        const book = scoreProblem(p, opts).mistakeBook;
        assert.ok(book.length <= opts.mistakeBookCap);
        assert.ok(book.every((e) => Number.isInteger(e.frequency) && e.frequency >= 1));
        assert.ok(book.every((e, i) => i === 0 || compareEntries(book[i - 1]!, e) < 0));
      }),
    );
  });

  it('does not depend on the order the record lists the book, the responses or the problems in', () => {
    fc.assert(
      fc.property(scenario, fc.integer(), ([opts, p], seed) => {
        const rotate = <T>(xs: T[]) => (xs.length ? [...xs.slice(seed % xs.length), ...xs.slice(0, seed % xs.length)] : xs);
        const reordered: ProblemExecution = {
          ...p,
          mistakeBook: [...p.mistakeBook].reverse(),
          candidates: p.candidates.map((c) => ({ ...c, responses: rotate(c.responses) })),
        };
        const a = scoreProblem(p, opts);
        const b = scoreProblem(reordered, opts);
        assert.deepEqual(b.mistakeBook, a.mistakeBook);
        a.candidates.forEach((c, i) => assert.ok(Math.abs(c.rewardA - b.candidates[i]!.rewardA) < 1e-12));
        const other = { ...p, questionId: 'other' };
        const [x, y] = [scoreBatch([p, other], opts).problems, scoreBatch([other, p], opts).problems];
        assert.deepEqual(x[0], y[1]);
      }),
    );
  });

  it('does not depend on the order of distinct valid tests within a response when at most T are written', () => {
    fc.assert(
      fc.property(optionsArb, fc.uniqueArray(text, { maxLength: 8 }), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), (opts, texts, outcomes) => {
        const asserts = texts.slice(0, opts.testsPerResponse).map((test, i) => ({ test, valid: true, passed: outcomes[i]! }));
        const make = (xs: typeof asserts): ProblemExecution => ({ questionId: 'q', mistakeBook: [], candidates: [{ valid: true, mistakeBookPassed: [], responses: [{ nonprintableRatio: 0, asserts: xs }] }] });
        const a = scoreProblem(make(asserts), opts);
        const b = scoreProblem(make([...asserts].reverse()), opts);
        assert.deepEqual(b, a);
      }),
    );
  });
});
