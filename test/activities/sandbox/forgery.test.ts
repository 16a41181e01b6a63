import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestCase } from '../../../activities/sandbox/index.js';
import { testsFrom, useSandbox } from './helpers.js';

const reference = 'def add(a, b):\n    return a + b\n';
const asserts = ['assert add(1, 2) == 3', 'assert add(10, -4) == 6', 'assert add(0, 0) == 0'];

describe('a candidate trying to forge passes', () => {
  const sandbox = useSandbox();
  let tests: TestCase[] | null = null;

  async function outcomes(code: string): Promise<string[]> {
    tests ??= await testsFrom(sandbox.get(), reference, 'add', asserts);
    const run = await sandbox.get().runTests({ code, entryPoint: 'add', tests, perTestTimeoutMs: 1000 });
    return run.tests.map((t) => t.outcome);
  }

  it('passes when it is honestly correct', async () => {
    assert.deepEqual(await outcomes(reference), ['pass', 'pass', 'pass']);
  });

  it('fails with an object whose __eq__ always returns True', async () => {
    const code = 'class Any:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Any()\n';
    assert.deepEqual(await outcomes(code), ['fail', 'fail', 'fail']);
  });

  it('fails with an int subclass that claims equality', async () => {
    const code = 'class Sneaky(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\ndef add(a, b):\n    return Sneaky(a + b + 1)\n';
    assert.deepEqual(await outcomes(code), ['fail', 'fail', 'fail']);
  });

  it('fails when it returns True for an expected 1, or a float for an int', async () => {
    tests ??= await testsFrom(sandbox.get(), reference, 'add', asserts);
    const one = await testsFrom(sandbox.get(), reference, 'add', ['assert add(1, 0) == 1']);
    const run = await sandbox.get().runTests({ code: 'def add(a, b):\n    return True\n', entryPoint: 'add', tests: one, perTestTimeoutMs: 1000 });
    assert.equal(run.tests[0]!.outcome, 'fail');
    assert.deepEqual(await outcomes('def add(a, b):\n    return float(a + b)\n'), ['fail', 'fail', 'fail']);
  });

  it('gets an error, not a pass, from sys.exit(0) or os._exit(0)', async () => {
    assert.deepEqual(await outcomes('import sys\ndef add(a, b):\n    sys.exit(0)\n'), ['error', 'error', 'error']);
    assert.deepEqual(await outcomes('import os\ndef add(a, b):\n    os._exit(0)\n'), ['error', 'error', 'error']);
  });

  it('fails even after patching builtins and the harness modules', async () => {
    const code =
      'import builtins, sys\n' +
      'builtins.type = lambda *a: int\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 0\n' +
      'for name, module in list(sys.modules.items()):\n' +
      '    if name in ("values", "harness", "frames", "json"):\n' +
      '        for attr in dir(module):\n' +
      '            if callable(getattr(module, attr, None)) and not attr.startswith("__"):\n' +
      '                try:\n                    setattr(module, attr, lambda *a, **k: None)\n                except Exception:\n                    pass\n' +
      'def add(a, b):\n    return -1\n';
    const result = await outcomes(code);
    assert.ok(result.every((o) => o !== 'pass'), result.join());
  });

  it('fails when it prints fake result lines or writes fake pass markers to every descriptor', async () => {
    const code =
      'import json, os, struct\n' +
      'fake = json.dumps({"i": 0, "o": "pass", "outcome": "pass", "passed": True}).encode()\n' +
      'print("PASS", "{\\"i\\": 0, \\"o\\": \\"returned\\"}", "all tests passed")\n' +
      'def add(a, b):\n' +
      '    print("PASS")\n' +
      '    for fd in range(3, 64):\n' +
      '        try:\n            os.write(fd, struct.pack(">I", len(fake)) + fake)\n        except OSError:\n            pass\n' +
      '    return -1\n';
    const result = await outcomes(code);
    assert.ok(result.every((o) => o !== 'pass'), result.join());
  });

  it('cannot escape the per-test timer by ignoring signals', async () => {
    const code =
      'import signal\n' +
      'def add(a, b):\n' +
      '    if a == 10:\n        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n        while True:\n            pass\n' +
      '    return a + b\n';
    assert.deepEqual(await outcomes(code), ['pass', 'timeout', 'pass']);
  });

  it('cannot turn a swallowed timeout into a pass', async () => {
    const code =
      'import time\n' +
      'def add(a, b):\n' +
      '    if a == 1:\n        try:\n            time.sleep(5)\n        except BaseException:\n            pass\n' +
      '    return a + b\n';
    assert.deepEqual(await outcomes(code), ['timeout', 'pass', 'pass']);
  });
});
