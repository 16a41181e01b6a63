import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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

/**
 * A candidate's function that reads its own process memory for strings matching `pattern` and
 * returns them. There is no /proc in the sandbox, so no /proc/self/maps: it starts from the
 * addresses of its live objects (gc) and the end of the malloc heap (sbrk), extends each start page
 * by page in both directions while pages are readable, and reads them with ctypes.string_at. A page
 * is tested by writing it to a pipe first: write() fails with EFAULT on an unmapped page instead of
 * crashing the process. Returns the match when there is one, else the sorted list of them.
 */
function memoryScanner(pattern: string): string {
  return [
    'import ctypes, gc, os, re',
    'def leak(key):',
    '    libc = ctypes.CDLL(None, use_errno=True)',
    '    libc.write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]',
    '    libc.write.restype = ctypes.c_ssize_t',
    '    libc.sbrk.argtypes = [ctypes.c_ssize_t]',
    '    libc.sbrk.restype = ctypes.c_void_p',
    '    page = 4096',
    '    r, w = os.pipe()',
    '    def readable(addr):',
    '        if addr <= 0 or libc.write(w, addr, page) != page:',
    '            return False',
    '        os.read(r, page)',
    '        return True',
    '    starts = {id(o) & ~(page - 1) for o in gc.get_objects()} | {(libc.sbrk(0) - 1) & ~(page - 1)}',
    '    seen, found, budget = set(), set(), 1 << 16',
    '    for start in sorted(starts):',
    '        if start in seen or not readable(start):',
    '            continue',
    '        lo = hi = start',
    '        while budget > 0 and lo - page not in seen and readable(lo - page):',
    '            lo -= page',
    '            budget -= 1',
    '        while budget > 0 and hi + page not in seen and readable(hi + page):',
    '            hi += page',
    '            budget -= 1',
    '        seen.update(range(lo, hi + page, page))',
    '        data = ctypes.string_at(lo, hi + page - lo)',
    `        found.update(m.decode() for m in re.findall(rb${JSON.stringify(pattern)}, data))`,
    '    return found.pop() if len(found) == 1 else sorted(found)',
  ].join('\n');
}

describe('a candidate reading its own memory for expected values', () => {
  // One slot per pool: the candidate's executions all fork from the same server.
  const sandbox = useSandbox({ concurrency: 1 });
  const reversed = (s: string) => [...s].reverse().join('');
  // The reference builds its return value at run time: only its output carries the marker.
  const reference = "def leak(key):\n    return 'QZXO' + key[::-1]\n";

  /** Validates `assert leak(...) == <claim>`, then runs the scanner as a candidate for its call. */
  async function forgeAfterValidating(claimOf: (expected: string) => string): Promise<void> {
    const secret = randomBytes(16).toString('hex');
    const validation = await sandbox.get().validateTests({
      reference, entryPoint: 'leak', asserts: [`assert leak('${reversed(secret)}') == ${claimOf(`'QZXO${secret}'`)}`], perTestTimeoutMs: 2000,
    });
    const { call, expected, expectedRepr } = validation.tests[0]!;
    assert.equal(expectedRepr, `'QZXO${secret}'`);
    const tests = [{ call: call!, expected: expected! }];
    const run = async (code: string) => (await sandbox.get().runTests({ code, entryPoint: 'leak', tests, perTestTimeoutMs: 10_000 })).tests[0]!;

    const forged = await run(memoryScanner('QZXO[0-9a-f]{32}'));
    assert.notEqual(forged.outcome, 'pass');
    assert.ok(!(forged.actualRepr ?? '').includes(secret), forged.actualRepr ?? '');

    // The scan itself works: a value an earlier candidate execution returned through the same
    // fork server is found.
    const own = randomBytes(16).toString('hex');
    await run(`def leak(key):\n    return 'QZXC' + '${reversed(own)}'[::-1]\n`);
    const sanity = await run(memoryScanner('QZXC[0-9a-f]{32}'));
    assert.ok((sanity.actualRepr ?? '').includes(`QZXC${own}`), sanity.actualRepr ?? sanity.detail ?? '');
  }

  it("cannot find the reference's return value for its call", async () => {
    await forgeAfterValidating(() => "'a wrong claim'");
  });

  it('cannot find the claimed value of a valid assert', async () => {
    await forgeAfterValidating((expected) => expected);
  });

  it("cannot find a reference's source that ran as a whole program (evaluation's golden run, mutants)", async () => {
    const scan = async (pattern: string) => (await sandbox.get().runProgram(`${memoryScanner(pattern)}\nprint(leak(None))\n`, { timeoutMs: 20_000 })).stdout;
    const secret = randomBytes(16).toString('hex');
    await sandbox.get().runProgram(`def solution():\n    return 'QZXR${secret}'\nprint(solution())\n`, { owner: 'reference' });
    assert.ok(!(await scan('QZXR[0-9a-f]{32}')).includes(secret));
    // The same scan finds a program's source that ran as a candidate's.
    const own = randomBytes(16).toString('hex');
    await sandbox.get().runProgram(`def solution():\n    return 'QZXP${own}'\nprint(solution())\n`);
    assert.ok((await scan('QZXP[0-9a-f]{32}')).includes(own));
  });
});
