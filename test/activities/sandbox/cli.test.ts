import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const bin = fileURLToPath(new URL('../../../bin/code-a1.js', import.meta.url));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('the exec and check commands', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sandbox-cli-'));
    await writeFile(join(dir, 'program.py'), 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nsys.exit(4)\n');
    await writeFile(join(dir, 'code.py'), 'def add(a, b):\n    return a - b if a > 5 else a + b\n');
    await writeFile(join(dir, 'ref.py'), 'def add(a, b):\n    return a + b\n');
    await writeFile(join(dir, 'tests.json'), JSON.stringify(['assert add(1, 2) == 3', 'assert add(7, 1) == 8', 'assert add(1, 1) == 3', 'assert sub(1) == 2']));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('exec prints exactly the contract fields and exits 0 whatever the program did', async () => {
    const { code, stdout } = await cli(['exec', '--program', join(dir, 'program.py'), '--timeout-ms', '5000']);
    assert.equal(code, 0);
    const result = JSON.parse(stdout);
    assert.deepEqual(Object.keys(result), ['status', 'exitCode', 'stdout', 'stderr', 'durationMs', 'outputTruncated']);
    assert.deepEqual([result.status, result.exitCode, result.stdout, result.stderr, result.outputTruncated], ['error', 4, 'out\n', 'err\n', false]);
  });

  it('check validates against the reference, then runs valid tests with the reference values', async () => {
    const args = ['check', '--code', join(dir, 'code.py'), '--entry-point', 'add', '--tests', join(dir, 'tests.json')];
    const { code, stdout } = await cli([...args, '--reference', join(dir, 'ref.py'), '--timeout-ms', '2000']);
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(stdout), {
      codeValid: true,
      tests: [
        { index: 0, outcome: 'pass', valid: true, expected: '3' },
        { index: 1, outcome: 'fail', valid: true, expected: '8' },
        { index: 2, outcome: 'invalid', valid: false, expected: '2' },
        { index: 3, outcome: 'invalid', valid: false, expected: null },
      ],
    });
    const asWritten = JSON.parse((await cli(args)).stdout);
    assert.deepEqual(asWritten.tests.map((t: { outcome: string }) => t.outcome), ['pass', 'fail', 'fail', 'invalid']);
  });

  it('exits non-zero with a message for bad arguments and unreadable files', async () => {
    const missing = await cli(['exec', '--program', join(dir, 'missing.py')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot read --program/);
    const badTests = await cli(['check', '--code', join(dir, 'code.py'), '--entry-point', 'add', '--tests', join(dir, 'program.py')]);
    assert.notEqual(badTests.code, 0);
    assert.notEqual((await cli(['exec', '--program', join(dir, 'program.py'), '--timeout-ms', 'soon'])).code, 0);
  });
});
