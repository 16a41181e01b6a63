import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testsFrom, useSandbox } from './helpers.js';

const reference = 'def f(n):\n    return n * 2\n';

describe('running tests against a candidate', () => {
  const sandbox = useSandbox();

  it('gives every assert its own time limit, so a timeout on one does not fail the next', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', [1, 2, 3, 4, 5].map((n) => `assert f(${n}) == ${2 * n}`));
    const code = 'import time\ndef f(n):\n    if n == 3:\n        while True:\n            pass\n    if n == 4:\n        time.sleep(10)\n    return n * 2\n';
    const run = await sandbox.get().runTests({ code, entryPoint: 'f', tests, perTestTimeoutMs: 300 });
    assert.deepEqual(run.tests.map((t) => t.outcome), ['pass', 'pass', 'timeout', 'timeout', 'pass']);
  });

  it('keeps going after a test blocks in C code that the timer cannot interrupt', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', [1, 2, 3].map((n) => `assert f(${n}) == ${2 * n}`));
    const code = 'import re\ndef f(n):\n    if n == 2:\n        re.match(r"(a+)+$", "a" * 40 + "b")\n    return n * 2\n';
    const run = await sandbox.get().runTests({ code, entryPoint: 'f', tests, perTestTimeoutMs: 300 });
    assert.deepEqual(run.tests.map((t) => t.outcome), ['pass', 'timeout', 'pass']);
  });

  it('reports wrong answers as fail and exceptions as error', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', ['assert f(1) == 2', 'assert f(2) == 4', 'assert f(0) == 0']);
    const code = 'def f(n):\n    if n == 0:\n        raise ValueError("zero")\n    return n * 2 if n == 1 else n\n';
    const run = await sandbox.get().runTests({ code, entryPoint: 'f', tests, perTestTimeoutMs: 1000 });
    assert.deepEqual(run.tests.map((t) => t.outcome), ['pass', 'fail', 'error']);
    assert.match(run.tests[2]!.detail ?? '', /ValueError: zero/);
    assert.equal(run.tests[1]!.actualRepr, '2');
  });

  it('marks code that does not parse or fails to define as invalid', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', ['assert f(1) == 2']);
    for (const code of ['def f(n):\n    return (', 'raise SystemExit(0)\ndef f(n):\n    return 2', 'import os\nos._exit(0)', 'while True:\n    pass']) {
      const run = await sandbox.get().runTests({ code, entryPoint: 'f', tests, perTestTimeoutMs: 500, defineTimeoutMs: 500 });
      assert.equal(run.codeValid, false, code);
      assert.deepEqual(run.tests.map((t) => t.outcome), ['error']);
    }
  });

  it('runs candidates that import numpy, whether they name it in an import or not', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', ['assert f(3) == 6']);
    for (const code of ['import numpy as np\ndef f(n):\n    return int(np.int64(n) * 2)\n', 'def f(n):\n    return int(__import__("nu" + "mpy").int64(n) * 2)\n']) {
      const run = await sandbox.get().runTests({ code, entryPoint: 'f', tests, perTestTimeoutMs: 2000 });
      assert.deepEqual(run.tests.map((t) => t.outcome), ['pass'], JSON.stringify(run));
    }
  });

  it('isolates candidates from each other: state does not leak between executions', async () => {
    const tests = await testsFrom(sandbox.get(), reference, 'f', ['assert f(1) == 2']);
    const writer = 'import builtins\nbuiltins.leak = 1\nopen("/tmp/leak", "w")\ndef f(n):\n    return n * 2\n';
    const reader = 'import builtins, os\ndef f(n):\n    return n * 2 if not hasattr(builtins, "leak") and not os.listdir(".") else -1\n';
    await sandbox.get().runTests({ code: writer, entryPoint: 'f', tests, perTestTimeoutMs: 1000 });
    const run = await sandbox.get().runTests({ code: reader, entryPoint: 'f', tests, perTestTimeoutMs: 1000 });
    assert.equal(run.tests[0]!.outcome, 'pass');
  });
});

describe('validating tests against the reference', () => {
  const sandbox = useSandbox({ concurrency: 1 });

  it('keeps asserts whose claim equals the reference value and gives their canonical form', async () => {
    const result = await sandbox.get().validateTests({
      reference: 'def f(xs, k=1):\n    return sorted(xs)[:k]\n',
      entryPoint: 'f',
      asserts: ['assert f([3, 1, 2], k=2) == [1, 2]', 'assert [1] == f([1 + 2, 1])', 'assert f((5,), 1) == [5]'],
      perTestTimeoutMs: 1000,
    });
    assert.deepEqual(result.tests.map((t) => t.valid), [true, true, true]);
    assert.deepEqual(result.tests.map((t) => t.canonical), [
      'assert f([3, 1, 2], k=2) == [1, 2]',
      'assert f([3, 1]) == [1]',
      'assert f((5,), 1) == [5]',
    ]);
  });

  it('rejects wrong claims, duplicates, unparseable asserts and asserts that do not call the entry point', async () => {
    const result = await sandbox.get().validateTests({
      reference,
      entryPoint: 'f',
      asserts: [
        'assert f(2) == 5',
        'assert f(2) == 4',
        'assert f(1 + 1) == 4',
        'assert f(2',
        'assert g(2) == 4',
        'assert f(2) != 4',
        'assert f(2) == 4 and f(3) == 6',
        'print(f(2))',
        'assert f(2) == f(2)',
      ],
      perTestTimeoutMs: 1000,
    });
    assert.deepEqual(
      result.tests.map((t) => t.reason),
      ['mismatch', null, 'duplicate', 'unparseable', 'not_entry_point', 'unparseable', 'unparseable', 'unparseable', 'claim_error'],
    );
    assert.equal(result.tests[0]!.expectedRepr, '4');
  });

  it('rejects claims that are hostile objects, and arguments that try to patch the reference', async () => {
    const result = await sandbox.get().validateTests({
      reference: 'def f(xs):\n    return sorted(xs)\n',
      entryPoint: 'f',
      asserts: [
        "assert f([2, 1]) == type('Any', (), {'__eq__': lambda s, o: True})()",
        "assert f(__import__('builtins').__dict__.__setitem__('sorted', lambda x: 42) or [2, 1]) == 42",
        'assert f([lambda: 1]) == 1',
      ],
      perTestTimeoutMs: 1000,
    });
    assert.deepEqual(result.tests.map((t) => t.reason), ['claim_unrepresentable', 'mismatch', 'args_unrepresentable']);
  });

  it('rejects tests on which the reference times out or raises', async () => {
    const result = await sandbox.get().validateTests({
      reference: 'def f(n):\n    if n < 0:\n        raise ValueError(n)\n    while n == 7:\n        pass\n    return n\n',
      entryPoint: 'f',
      asserts: ['assert f(7) == 7', 'assert f(-1) == -1', 'assert f(3) == 3'],
      perTestTimeoutMs: 300,
    });
    assert.deepEqual(result.tests.map((t) => t.reason), ['reference_timeout', 'reference_error', null]);
  });

  it('runs the oracle and the assert text in processes separate from each other', async () => {
    const result = await sandbox.get().validateTests({
      reference: 'import os\nPID = os.getpid()\ndef f(n):\n    return os.getpid() == PID\n',
      entryPoint: 'f',
      asserts: ["assert f(__import__('os').getpid()) == True"],
      perTestTimeoutMs: 1000,
    });
    assert.equal(result.tests[0]!.valid, true);
  });
});
