import { randomInt } from 'node:crypto';
import type { ExecResult } from '../sandbox/index.js';

export type GoldenOutcome = 'pass' | 'fail' | 'error' | 'timeout';

/**
 * Exit codes of the trusted epilogue, drawn per program. The candidate's code runs first, in the
 * same process, and could end it early (`sys.exit(0)`, `os._exit(0)`, a `__main__` block calling
 * `exit()`): with a fixed "pass" status such a program would pass without the check ever running.
 * Only the epilogue, which runs after `check`, exits with these codes; a program that exits by
 * itself would have to hit the drawn pass code (1 in 112 for a blind guess).
 *
 * What this does not stop: code that inspects the interpreter's frames to read the program text
 * (and so the codes), or patches the epilogue's imports. Everything in one process is reachable;
 * the defence is aimed at accidental or cheap early exits, which is what evaluated models produce.
 */
export interface ExitCodes {
  pass: number;
  fail: number;
  error: number;
}

/** Codes 16..127: clear of the interpreter's own (0, 1, 2) and of the shell's signal range (128+). */
const FIRST_CODE = 16;
const CODE_SPAN = 112;

export function drawExitCodes(): ExitCodes {
  const pass = FIRST_CODE + randomInt(CODE_SPAN);
  // Distinct by construction: successive offsets modulo the span.
  const offset = 1 + randomInt(CODE_SPAN - 2);
  return {
    pass,
    fail: FIRST_CODE + ((pass - FIRST_CODE + offset) % CODE_SPAN),
    error: FIRST_CODE + ((pass - FIRST_CODE + offset + 1) % CODE_SPAN),
  };
}

/**
 * The program the sandbox runs: the solution, then the golden test (which defines `check` after the
 * solution, so a solution cannot replace it), then the epilogue that calls `check(<entry point>)`
 * and reports how it ended through the exit code. Flushes before `os._exit`, which skips the
 * interpreter's own flush and every `atexit` handler the solution may have registered.
 *
 * The entry point is bound before the golden test runs: MBPP/56's function is itself named
 * `check`, and the test's `def check(check)` would otherwise replace it, so `check(check)` would
 * test the test. A solution that does not define the entry point stops at that line: an error.
 */
export function goldenProgram(code: string, test: string, entryPoint: string, codes: ExitCodes): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(entryPoint)) throw new Error(`entry point ${JSON.stringify(entryPoint)} is not a Python identifier`);
  return [
    code,
    `__code_a1_candidate = ${entryPoint}`,
    test,
    'def __code_a1_epilogue():',
    '    import os, sys, traceback',
    '    try:',
    '        check(__code_a1_candidate)',
    '    except AssertionError:',
    '        traceback.print_exc()',
    `        status = ${codes.fail}`,
    '    except BaseException:',
    '        traceback.print_exc()',
    `        status = ${codes.error}`,
    '    else:',
    `        status = ${codes.pass}`,
    '    for stream in (sys.stdout, sys.stderr):',
    '        try:',
    '            stream.flush()',
    '        except BaseException:',
    '            pass',
    '    os._exit(status)',
    '__code_a1_epilogue()',
    '',
  ].join('\n');
}

/**
 * How the program ended. Exit 0 means it stopped before the epilogue (an early exit): an error,
 * never a pass. A program killed by a signal (memory limit, CPU limit, crash) is an error too.
 */
export function classify(result: Pick<ExecResult, 'status' | 'exitCode'>, codes: ExitCodes): GoldenOutcome {
  if (result.status === 'timeout') return 'timeout';
  if (result.status !== 'error') return 'error';
  if (result.exitCode === codes.pass) return 'pass';
  if (result.exitCode === codes.fail) return 'fail';
  return 'error';
}
