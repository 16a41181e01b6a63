import { availableParallelism } from 'node:os';
import { ForkServerPool } from './pool.js';
import { defaultPython, resolvePython, serverCommand } from './runtime.js';
import type {
  Call,
  CheckResult,
  ExecResult,
  InvalidReason,
  ParsedAssert,
  RunTestsResult,
  TestCase,
  TestRun,
  ValidatedTest,
  ValidationResult,
} from './types.js';
import { pyEquals, type PyValue } from './values.js';

export interface SandboxOptions {
  /** Fork servers, i.e. executions at a time, of each pool (see Role). Default: one per core. */
  concurrency?: number;
  /** Interpreter whose runtime (and site-packages: numpy) the sandbox offers. Default: the project's .venv. */
  python?: string;
  /** Default address-space limit per execution, in MiB (numpy alone maps a few hundred). */
  memoryMb?: number;
  /** Largest file a program may write, in MiB. */
  fileMb?: number;
  /** Processes per execution (RLIMIT_NPROC of the slot's uid): stops fork bombs. */
  nproc?: number;
  /** Size of each server's /tmp (tmpfs holding the per-execution directories), in MiB. */
  tmpMb?: number;
  /** Bytes of stdout and of stderr kept per program; the rest is read and discarded. */
  outputLimitBytes?: number;
  /**
   * First uid of this sandbox's slots: slot i of the candidates' pool runs programs as uidBase + i,
   * of the reference's uidBase + concurrency + i, of the tests' uidBase + 2 * concurrency + i, so
   * that one slot's fork bomb (RLIMIT_NPROC is counted per uid) cannot starve another's forks.
   * Default: a block picked from the process id, so that sandboxes in different processes do not
   * share uids.
   */
  uidBase?: number;
}

export interface ProgramOptions {
  timeoutMs?: number;
  memoryMb?: number;
  /**
   * Whose code the program carries. `reference`: the oracle's source or code derived from it
   * (its golden-test run, its mutants), which then runs on the reference pool and never enters
   * a server that forks candidate code. Default `candidate`.
   */
  owner?: 'candidate' | 'reference';
}

export interface ValidateTestsInput {
  /** The reference (oracle) solution, complete: HumanEval's prompt plus body. */
  reference: string;
  entryPoint: string;
  /** One assert statement each, e.g. `assert f(1, [2]) == 3`. */
  asserts: string[];
  perTestTimeoutMs: number;
  defineTimeoutMs?: number;
  memoryMb?: number;
}

export interface RunTestsInput {
  code: string;
  entryPoint: string;
  tests: TestCase[];
  perTestTimeoutMs: number;
  defineTimeoutMs?: number;
  memoryMb?: number;
}

export interface CheckTestsInput {
  code: string;
  entryPoint: string;
  asserts: string[];
  reference?: string;
  perTestTimeoutMs: number;
  defineTimeoutMs?: number;
  memoryMb?: number;
}

const DEFAULT_DEFINE_TIMEOUT_MS = 5_000;
const DEFAULT_PROGRAM_TIMEOUT_MS = 10_000;
// Beyond every deadline the server enforces itself; only a hung server reaches this.
const WATCHDOG_SLACK_MS = 15_000;
const GRACE_MS = 250;

let poolsCreated = 0;

function defaultUidBase(): number {
  // Blocks of 256 uids (three pools of up to 85 slots) above the system and regular user ranges.
  return 100_000 + (((process.pid % 2048) * 8 + (poolsCreated++ % 8)) * 256);
}

/**
 * Whose data a pool's fork servers hold. A server keeps what passed through it (requests, results)
 * in its heap, and the executions it forks later get a copy-on-write image of that heap, freed
 * memory included: a program can read it back (test/activities/sandbox/forgery.test.ts does). So
 * each party's code forks from a server that only ever held that party's data:
 * - `reference`: the oracle's code and its return values, i.e. the expected values;
 * - `tests`: the asserts being parsed, whose claims equal the expected values when they are valid;
 * - `candidate`: candidate code, given only the calls, and whole programs.
 */
type Role = 'candidate' | 'reference' | 'tests';

type CallOutcome =
  | { o: 'returned'; v: PyValue; repr: string }
  | { o: 'raised' | 'unrepresentable' | 'timeout' | 'crashed'; error?: string };

type ParseOutcome =
  | { o: 'parsed'; args: PyValue; kwargs: PyValue; call: string; claim: CallOutcome }
  | { o: 'invalid'; reason: InvalidReason; error?: string }
  | { o: 'timeout' | 'crashed' | 'raised' | 'unrepresentable'; error?: string };

interface ItemsResponse<T> {
  defined: boolean;
  defineError: string | null;
  results: T[];
}

/** Isolated, unforgeable execution of untrusted Python on pools of warm fork servers (see Role). */
export class Sandbox {
  constructor(
    private readonly pools: Record<Role, ForkServerPool>,
    private readonly defaults: Required<Pick<SandboxOptions, 'memoryMb' | 'outputLimitBytes'>>,
  ) {}

  get concurrency(): number {
    return this.pools.candidate.size;
  }

  /** Runs a whole program, as `python program.py` would, and reports how it ended. */
  async runProgram(source: string, options: ProgramOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
    const frame = await this.pools[options.owner ?? 'candidate'].request(
      {
        kind: 'program',
        source,
        timeoutMs,
        memoryMb: options.memoryMb ?? this.defaults.memoryMb,
        outputLimitBytes: this.defaults.outputLimitBytes,
      },
      timeoutMs + WATCHDOG_SLACK_MS,
    );
    const { status, exitCode, stdout, stderr, durationMs, outputTruncated } = frame as unknown as ExecResult;
    return { status, exitCode, stdout, stderr, durationMs, outputTruncated };
  }

  /**
   * Parses asserts (with Python's `ast`, inside the sandbox) into calls of the entry point and
   * claimed values. Arguments and claims are evaluated with builtins (and math) only, in a process
   * of their own, and travel as values: no test text ever runs next to a reference or a candidate.
   */
  async parseAsserts(input: { entryPoint: string; asserts: string[]; perTestTimeoutMs: number; memoryMb?: number }): Promise<ParsedAssert[]> {
    if (input.asserts.length === 0) return [];
    const response = await this.items<ParseOutcome>('tests', {
      kind: 'parse',
      entryPoint: input.entryPoint,
      asserts: input.asserts,
      perTestTimeoutMs: input.perTestTimeoutMs,
      defineTimeoutMs: DEFAULT_DEFINE_TIMEOUT_MS,
      memoryMb: input.memoryMb ?? this.defaults.memoryMb,
    });
    return response.results.map((r, index): ParsedAssert => {
      if (r.o === 'parsed') {
        const call: Call = { text: r.call, args: r.args, kwargs: r.kwargs };
        if (r.claim.o === 'returned') {
          return { index, ok: true, call, claimed: r.claim.v, claimedRepr: r.claim.repr, claimError: null, detail: null };
        }
        const claimError: InvalidReason =
          r.claim.o === 'timeout' ? 'timeout' : r.claim.o === 'unrepresentable' ? 'claim_unrepresentable' : 'claim_error';
        return { index, ok: true, call, claimed: null, claimedRepr: null, claimError, detail: r.claim.error ?? null };
      }
      if (r.o === 'invalid') return { index, ok: false, reason: r.reason, detail: r.error ?? null };
      return { index, ok: false, reason: r.o === 'timeout' ? 'timeout' : 'unparseable', detail: r.error ?? null };
    });
  }

  /**
   * Validates asserts against the reference: valid iff the reference call returns in time without
   * raising and equals the claimed value (compared here, exactly typed). Duplicates (same call,
   * same reference value) and anything that is not `assert <entry point call> == <value>` are invalid.
   */
  async validateTests(input: ValidateTestsInput): Promise<ValidationResult> {
    const parsed = await this.parseAsserts(input);
    const runnable = parsed.filter((p) => p.ok);
    const reference = await this.callAll('reference', input.reference, input.entryPoint, runnable.map((p) => p.call), input);
    const refByIndex = new Map(runnable.map((p, i) => [p.index, reference.results[i]!]));
    const seen: ValidatedTest[] = [];
    const tests = parsed.map((p): ValidatedTest => {
      const invalid = (reason: InvalidReason, detail: string | null, extra: Partial<ValidatedTest> = {}): ValidatedTest => ({
        index: p.index, valid: false, reason, detail, call: null, expected: null, expectedRepr: null, canonical: null, ...extra,
      });
      if (!p.ok) return invalid(p.reason, p.detail);
      if (!reference.defined) return invalid('reference_error', reference.defineError, { call: p.call });
      const ref = refByIndex.get(p.index)!;
      if (ref.o !== 'returned') {
        const reason: InvalidReason =
          ref.o === 'timeout' ? 'reference_timeout' : ref.o === 'unrepresentable' ? 'reference_unrepresentable' : 'reference_error';
        return invalid(reason, ref.error ?? null, { call: p.call });
      }
      const withRef = { call: p.call, expected: ref.v, expectedRepr: ref.repr };
      if (p.claimed === null) return invalid(p.claimError ?? 'claim_error', p.detail, withRef);
      if (!pyEquals(p.claimed, ref.v)) {
        return invalid('mismatch', `claimed ${p.claimedRepr}, the reference returns ${ref.repr}`, withRef);
      }
      if (seen.some((s) => s.call!.text === p.call.text && pyEquals(s.expected!, ref.v))) {
        return invalid('duplicate', null, withRef);
      }
      const test: ValidatedTest = {
        index: p.index, valid: true, reason: null, detail: null, ...withRef, canonical: `assert ${p.call.text} == ${ref.repr}`,
      };
      seen.push(test);
      return test;
    });
    return { referenceValid: reference.defined, referenceError: reference.defineError, tests };
  }

  /**
   * Runs tests against candidate code in one execution, each call under its own time limit. Only
   * the calls enter the candidate's process; its return values come back as data and are compared
   * here with the trusted expected values.
   */
  async runTests(input: RunTestsInput): Promise<RunTestsResult> {
    const response = await this.callAll('candidate', input.code, input.entryPoint, input.tests.map((t) => t.call), input);
    const tests = input.tests.map((test, index): TestRun => {
      const r = response.results[index]!;
      if (r.o === 'returned') {
        const outcome = pyEquals(r.v, test.expected) ? 'pass' : 'fail';
        return { index, outcome, actual: r.v, actualRepr: r.repr, detail: null };
      }
      const detail = response.defined ? (r.error ?? null) : `the code is not valid: ${response.defineError}`;
      const outcome = r.o === 'timeout' ? 'timeout' : r.o === 'unrepresentable' ? 'fail' : 'error';
      return { index, outcome, actual: null, actualRepr: null, detail };
    });
    return { codeValid: response.defined, codeError: response.defineError, tests };
  }

  /** The `check` command: validate against a reference when given, then run against the code. */
  async checkTests(input: CheckTestsInput): Promise<CheckResult> {
    const { reference } = input;
    if (reference === undefined) {
      const parsed = await this.parseAsserts(input);
      const cases = parsed.flatMap((p) => (p.ok && p.claimed ? [{ index: p.index, call: p.call, expected: p.claimed }] : []));
      const run = await this.runTests({ ...input, tests: cases });
      const outcomes = new Map(cases.map((c, i) => [c.index, run.tests[i]!.outcome]));
      return {
        codeValid: run.codeValid,
        tests: parsed.map((p) => {
          const outcome = outcomes.get(p.index);
          return outcome
            ? { index: p.index, outcome, valid: null, expected: null }
            : { index: p.index, outcome: 'invalid' as const, valid: false, expected: null };
        }),
      };
    }
    const validation = await this.validateTests({ ...input, reference });
    const valid = validation.tests.filter((t) => t.valid);
    const run = await this.runTests({ ...input, tests: valid.map((t) => ({ call: t.call!, expected: t.expected! })) });
    const outcomes = new Map(valid.map((t, i) => [t.index, run.tests[i]!.outcome]));
    return {
      codeValid: run.codeValid,
      tests: validation.tests.map((t) => ({
        index: t.index,
        outcome: outcomes.get(t.index) ?? 'invalid',
        valid: t.valid,
        expected: t.expectedRepr,
      })),
    };
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.pools).map((pool) => pool.close()));
  }

  private callAll(
    role: 'reference' | 'candidate',
    code: string,
    entryPoint: string,
    calls: Call[],
    limits: { perTestTimeoutMs: number; defineTimeoutMs?: number; memoryMb?: number },
  ): Promise<ItemsResponse<CallOutcome>> {
    return this.items<CallOutcome>(role, {
      kind: 'call',
      code,
      entryPoint,
      calls: calls.map((c) => ({ args: c.args, kwargs: c.kwargs })),
      perTestTimeoutMs: limits.perTestTimeoutMs,
      defineTimeoutMs: limits.defineTimeoutMs ?? DEFAULT_DEFINE_TIMEOUT_MS,
      memoryMb: limits.memoryMb ?? this.defaults.memoryMb,
    });
  }

  private async items<T>(role: Role, body: Record<string, unknown> & { perTestTimeoutMs: number; defineTimeoutMs: number }): Promise<ItemsResponse<T>> {
    const n = ((body.calls ?? body.asserts) as unknown[]).length;
    // Worst case: every item times out and the code is defined again after each, and the first
    // timeout is met twice (once batched, once unbatched: see run_items in supervisor.py).
    const worst = (n + 2) * (body.defineTimeoutMs + body.perTestTimeoutMs + GRACE_MS);
    return (await this.pools[role].request(body, worst + WATCHDOG_SLACK_MS)) as unknown as ItemsResponse<T>;
  }
}

export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const runtime = await resolvePython(options.python ?? defaultPython);
  const concurrency = options.concurrency ?? availableParallelism();
  const uidBase = options.uidBase ?? defaultUidBase();
  const limits = { memoryMb: options.memoryMb ?? 1024, fileMb: options.fileMb ?? 16, nproc: options.nproc ?? 64 };
  const poolAt = (block: number) =>
    new ForkServerPool(concurrency, (slot) =>
      serverCommand(runtime, { uid: uidBase + block * concurrency + slot, ...limits }, options.tmpMb ?? 256),
    );
  // Each pool as large as the sandbox's concurrency: the execute stage validates some problems'
  // tests while it runs others' candidates. Only the candidates' pool starts here; the others
  // start a server when a request finds every started one busy, so program-only users (exec, the
  // golden runner) never hold them. Measured on the 2-core VM: each server (with its zygote) is
  // ~21 MB of PSS, so at concurrency 2 the three pools hold 134 MB instead of 50 MB, and the first
  // two concurrent validations took ~200 ms instead of ~8 ms while they started four servers.
  const pools = { candidate: poolAt(0), reference: poolAt(1), tests: poolAt(2) };
  try {
    await pools.candidate.warm();
  } catch (err) {
    await Promise.all(Object.values(pools).map((pool) => pool.close()));
    throw err;
  }
  return new Sandbox(pools, { memoryMb: limits.memoryMb, outputLimitBytes: options.outputLimitBytes ?? 65_536 });
}
