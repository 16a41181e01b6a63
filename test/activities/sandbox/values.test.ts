import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asPyValue, pyEquals, type PyValue } from '../../../activities/sandbox/values.js';

const int = (n: number): PyValue => ['I', String(n)];
const float = (x: string): PyValue => ['F', x];

describe('pyEquals', () => {
  it('treats a bool and an int as different values', () => {
    assert.equal(pyEquals(['B', true], int(1)), false);
  });

  it('treats an int and a float as different values', () => {
    assert.equal(pyEquals(int(1), float('1.0')), false);
  });

  it('never considers NaN equal, even inside containers', () => {
    assert.equal(pyEquals(float('nan'), float('nan')), false);
    assert.equal(pyEquals(['L', [float('nan')]], ['L', [float('nan')]]), false);
  });

  it('considers 0.0 and -0.0 equal as Python does', () => {
    assert.equal(pyEquals(float('0.0'), float('-0.0')), true);
  });

  it('compares sets and dicts regardless of order', () => {
    assert.equal(pyEquals(['E', [int(1), int(2)]], ['E', [int(2), int(1)]]), true);
    assert.equal(pyEquals(['D', [[int(1), int(2)], [int(3), int(4)]]], ['D', [[int(3), int(4)], [int(1), int(2)]]]), true);
    assert.equal(pyEquals(['D', [[int(1), int(2)]]], ['D', [[int(1), int(3)]]]), false);
  });

  it('distinguishes lists from tuples and sets from frozensets', () => {
    assert.equal(pyEquals(['L', [int(1)]], ['T', [int(1)]]), false);
    assert.equal(pyEquals(['E', [int(1)]], ['Z', [int(1)]]), false);
  });

  it('compares integers beyond double precision exactly', () => {
    assert.equal(pyEquals(['I', '9007199254740993'], ['I', '9007199254740992']), false);
    assert.equal(pyEquals(['I', '9007199254740993'], ['I', '9007199254740993']), true);
  });
});

describe('asPyValue', () => {
  it('accepts nested well-formed values and rejects malformed ones', () => {
    assert.deepEqual(asPyValue(['L', [['I', '1'], ['S', 'a']]]), ['L', [['I', '1'], ['S', 'a']]]);
    assert.throws(() => asPyValue(['I', 1]), TypeError);
    assert.throws(() => asPyValue(['X']), TypeError);
    assert.throws(() => asPyValue(['D', [[['I', '1']]]]), TypeError);
  });
});
