import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges, canonicalJson, compareText, emptyBook, serializeSingleObjectBook, topK } from '../../../activities/mistake-book/index.js';
import { entry } from '../scoring/fixtures.js';

describe('book order', () => {
  it('compares text by code point, as Python does, not by UTF-16 unit', () => {
    const sorted = ['\u{1F600}', '\uFFFD', 'b', 'a', 'ab'].sort(compareText);
    assert.deepEqual(sorted, ['a', 'ab', 'b', '\uFFFD', '\u{1F600}']);
  });

  it('puts higher frequency first and breaks ties by text', () => {
    assert.deepEqual(topK([entry('b', 1), entry('c', 2), entry('a', 1)], 2), [entry('c', 2), entry('a', 1)]);
  });
});

describe('applyChanges', () => {
  const before = { tests: [entry('a', 2), entry('b', 1)], cleanStreak: 0, retired: false };
  const opts = { mistakeBookCap: 64, blacklistAfter: 0 };
  const cases = [
    { name: 'removes a test whose frequency reaches zero', decrements: ['b'], increments: [], after: [entry('a', 2)] },
    { name: 'never goes below zero however many candidates passed a test', decrements: ['b', 'b', 'b'], increments: ['b'], after: [entry('a', 2), entry('b', 1)] },
    { name: 'ignores decrements of tests it does not hold', decrements: ['zz'], increments: [], after: before.tests },
    { name: 'adds one per failure and starts new tests at one', decrements: [], increments: ['c', 'c', 'a'], after: [entry('a', 3), entry('c', 2), entry('b', 1)] },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual(applyChanges(before, { decrements: c.decrements, increments: c.increments, clean: false }, opts).tests, c.after));
  }
});

describe('serializeSingleObjectBook', () => {
  it('writes canonical JSON: the same bytes as sorting every key, whatever the insertion order', () => {
    const a = emptyBook();
    a.problems.set('10', { tests: [entry('assert f("x") == 1', 2)], cleanStreak: 1, retired: false });
    a.problems.set('9', { tests: [], cleanStreak: 0, retired: true });
    const b = emptyBook();
    b.problems.set('9', a.problems.get('9')!);
    b.problems.set('10', a.problems.get('10')!);
    const text = serializeSingleObjectBook('run', 3, a);
    assert.equal(text, canonicalJson(JSON.parse(text)));
    assert.equal(serializeSingleObjectBook('run', 3, b), text);
  });
});
