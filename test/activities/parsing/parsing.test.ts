import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { extractAsserts, extractCode, nonprintableRatio } from '../../../activities/parsing/index.js';

const fence = '```';

describe('extractCode', () => {
  const cases: { name: string; answer: string; entryPoint?: string; code: string | null }[] = [
    { name: 'returns the block of a clean answer', answer: `${fence}python\ndef f(x):\n    return x + 1\n${fence}`, code: 'def f(x):\n    return x + 1\n' },
    { name: 'ignores prose around the block', answer: `Sure! Here it is:\n\n${fence}python\ndef f(x):\n    return x\n${fence}\n\nThis runs in O(1).`, code: 'def f(x):\n    return x\n' },
    { name: 'returns null when the answer has no fence', answer: 'def f(x):\n    return x', code: null },
    { name: 'returns null when the only block is empty', answer: `${fence}python\n\n${fence}`, code: null },
    { name: 'keeps the content of a fence cut off by max tokens', answer: `${fence}python\ndef f(x):\n    return [x,`, code: 'def f(x):\n    return [x,\n' },
    { name: 'prefers the later of two definitions, the revision', answer: `${fence}python\ndef f(x):\n    return 0\n${fence}\nOops, fixed:\n${fence}python\ndef f(x):\n    return 1\n${fence}`, code: 'def f(x):\n    return 1\n' },
    { name: 'skips a trailing usage example that defines nothing', answer: `${fence}python\ndef f(x):\n    return 1\n${fence}\nUsage:\n${fence}python\nprint(f(2))\n${fence}`, code: 'def f(x):\n    return 1\n' },
    { name: 'prefers the block defining the entry point over a later helper', answer: `${fence}python\ndef solve(x):\n    return 1\n${fence}\n${fence}python\ndef helper():\n    pass\n${fence}`, entryPoint: 'solve', code: 'def solve(x):\n    return 1\n' },
    { name: 'ignores blocks in other languages', answer: `${fence}bash\npip install numpy\n${fence}\n${fence}\ndef f():\n    return 2\n${fence}`, code: 'def f():\n    return 2\n' },
    { name: 'accepts py and tilde fences and dedents an indented fence', answer: `1. Code:\n   ~~~py\n   def f():\n       return 3\n   ~~~`, code: 'def f():\n    return 3\n' },
    { name: 'does not end the block at backticks inside a line', answer: `${fence}python\ndef f():\n    return "${fence}"\n${fence}`, code: `def f():\n    return "${fence}"\n` },
    { name: 'reads only what follows the reasoning section', answer: `<think>${fence}python\ndef f():\n    return 0\n${fence}</think>\n${fence}python\nx = 1\n${fence}`, code: 'x = 1\n' },
    { name: 'handles Windows line endings', answer: `${fence}python\r\ndef f():\r\n    return 4\r\n${fence}`, code: 'def f():\n    return 4\n' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(extractCode(c.answer, c.entryPoint ? { entryPoint: c.entryPoint } : {}), c.code));
});

describe('extractAsserts', () => {
  const cases: { name: string; answer: string; asserts: string[] }[] = [
    { name: 'returns the asserts of one block in order', answer: `${fence}python\nassert f(1) == 2\nassert f(2) == 4\n${fence}`, asserts: ['assert f(1) == 2', 'assert f(2) == 4'] },
    { name: 'drops prose, imports and other statements', answer: `Tests:\n${fence}python\nfrom solution import f\nx = 3\nassert f(x) == 6\nprint('done')\n${fence}\nThese cover edge cases.`, asserts: ['assert f(x) == 6'] },
    { name: 'drops comments, including ones inside brackets, but keeps # inside strings', answer: `${fence}python\n# boundary\nassert f([1,  # one\n  2]) == 3  # sum\nassert g('#') == 1\n${fence}`, asserts: ['assert f([1,\n  2]) == 3', "assert g('#') == 1"] },
    { name: 'keeps an assert spanning lines through brackets whole', answer: `${fence}python\nassert f(\n    [1, 2],\n    {'a': (3,\n           4)},\n) == 7\n${fence}`, asserts: ["assert f(\n    [1, 2],\n    {'a': (3,\n           4)},\n) == 7"] },
    { name: 'keeps an assert continued with a backslash whole', answer: `${fence}python\nassert f(1) == \\\n    2\n${fence}`, asserts: ['assert f(1) == \\\n    2'] },
    { name: 'does not split inside a triple-quoted string', answer: `${fence}python\nassert f("""a\nassert b""") == 1\n${fence}`, asserts: ['assert f("""a\nassert b""") == 1'] },
    { name: 'splits statements joined by semicolons', answer: `${fence}python\nassert f(1) == 1; assert f(2) == 2\n${fence}`, asserts: ['assert f(1) == 1', 'assert f(2) == 2'] },
    { name: 'takes asserts indented under a test function', answer: `${fence}python\ndef test_f():\n    assert f(1) == 1\n${fence}`, asserts: ['assert f(1) == 1'] },
    { name: 'does not take identifiers that merely start with assert', answer: `${fence}python\nassertEqual(f(1), 1)\nassert(f(1) == 1)\n${fence}`, asserts: ['assert(f(1) == 1)'] },
    { name: 'collects asserts from every python block in order', answer: `${fence}python\nassert f(1) == 1\n${fence}\nmore:\n${fence}python\nassert f(2) == 2\n${fence}`, asserts: ['assert f(1) == 1', 'assert f(2) == 2'] },
    { name: 'scans the whole answer when there is no fence', answer: "Here's my test:\nassert f(1) == 1\nThat's it.", asserts: ['assert f(1) == 1'] },
    { name: 'returns an assert cut off at the end as written', answer: `${fence}python\nassert f(1) == 1\nassert f([1, 2`, asserts: ['assert f(1) == 1', 'assert f([1, 2'] },
    { name: 'recovers after a broken one-line string', answer: `${fence}python\nassert f('a) == 1\nassert f(2) == 2\n${fence}`, asserts: ["assert f('a) == 1", 'assert f(2) == 2'] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(extractAsserts(c.answer), c.asserts));
});

describe('nonprintableRatio', () => {
  const cases: { name: string; text: string; ratio: number }[] = [
    { name: 'is 0 for an empty response', text: '', ratio: 0 },
    { name: 'counts newlines, tabs and carriage returns as printable', text: 'a\n\tb\r\n', ratio: 0 },
    { name: 'counts non-Latin letters and emoji as printable, one per code point', text: '测试😀', ratio: 0 },
    { name: 'counts control characters', text: 'ab\u0000\u0007', ratio: 0.5 },
    { name: 'counts zero-width and byte-order marks', text: '\u200b\ufeffab', ratio: 0.5 },
    { name: 'counts private-use, lone surrogates and line separators', text: '\ue000\ud800\u2028a', ratio: 0.75 },
  ];
  for (const c of cases) it(c.name, () => assert.equal(nonprintableRatio(c.text), c.ratio));
});
