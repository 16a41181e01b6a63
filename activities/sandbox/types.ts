import type { PyValue } from './values.js';

export type ExecStatus = 'ok' | 'error' | 'timeout' | 'killed';

/** One whole-program execution (the `exec` CLI prints the first five fields). */
export interface ExecResult {
  status: ExecStatus;
  /** Exit status when the program exited; null when it timed out or was killed by a signal. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** Output beyond the per-stream cap was discarded. */
  outputTruncated: boolean;
}

/** A call of the entry point with concrete arguments: what a test runs, without its expectation. */
export interface Call {
  /** Canonical source, e.g. `f(1, [2], k=3)`, built by trusted code from the argument values. */
  text: string;
  /** A tuple value (tag 'T') of positional arguments. */
  args: PyValue;
  /** A dict value (tag 'D') with str keys. */
  kwargs: PyValue;
}

/** A runnable test: the call goes into the candidate's process, the expectation never does. */
export interface TestCase {
  call: Call;
  expected: PyValue;
}

export type InvalidReason =
  | 'unparseable'
  | 'not_entry_point'
  | 'args_error'
  | 'args_unrepresentable'
  | 'claim_error'
  | 'claim_unrepresentable'
  | 'timeout'
  | 'reference_error'
  | 'reference_timeout'
  | 'reference_unrepresentable'
  | 'mismatch'
  | 'duplicate';

/** An assert after parsing, before any reference ran: its call and its claimed value. */
export type ParsedAssert =
  | { index: number; ok: true; call: Call; claimed: PyValue | null; claimedRepr: string | null; claimError: InvalidReason | null; detail: string | null }
  | { index: number; ok: false; reason: InvalidReason; detail: string | null };

export interface ValidatedTest {
  index: number;
  valid: boolean;
  reason: InvalidReason | null;
  detail: string | null;
  call: Call | null;
  /** The reference's value when it returned one (also for invalid tests, e.g. a mismatch). */
  expected: PyValue | null;
  expectedRepr: string | null;
  /** `assert <call> == <reference value>` for valid tests. */
  canonical: string | null;
}

export interface ValidationResult {
  /** False when the reference itself could not be defined; every test is then invalid. */
  referenceValid: boolean;
  referenceError: string | null;
  tests: ValidatedTest[];
}

export type TestOutcome = 'pass' | 'fail' | 'error' | 'timeout';

export interface TestRun {
  index: number;
  outcome: TestOutcome;
  /** What the candidate returned, when it returned a representable value. */
  actual: PyValue | null;
  actualRepr: string | null;
  detail: string | null;
}

export interface RunTestsResult {
  /** The code parses and defining it (running its module top level) succeeds. */
  codeValid: boolean;
  codeError: string | null;
  tests: TestRun[];
}

/** The `check` CLI's output. */
export interface CheckResult {
  codeValid: boolean;
  tests: { index: number; outcome: TestOutcome | 'invalid'; valid: boolean | null; expected: string | null }[];
}
