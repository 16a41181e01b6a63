import type { Problem } from '../records.js';
import type { ProgramOptions, Sandbox } from '../sandbox/index.js';
import { classify, drawExitCodes, goldenProgram, type GoldenOutcome } from './golden-program.js';
import { DEFAULT_TIME_LIMITS, timeLimitMs, type TimeLimitPolicy } from './time-limit.js';

/** One solution's run against a problem's golden tests. */
export interface GoldenRun {
  outcome: GoldenOutcome;
  durationMs: number;
  timeLimitMs: number;
  /** The end of stderr (the traceback), for reports; empty on a pass. */
  detail: string;
}

/** The reference solution's own run, which sets the problem's time limit. */
export interface ReferenceRun {
  questionId: string;
  outcome: GoldenOutcome;
  durationMs: number;
  timeLimitMs: number;
  detail: string;
}

const DETAIL_CHARS = 2_000;

/**
 * Address-space limit per golden-test program, in MiB: EvalPlus's default, min(4 GB, system).
 * MBPP/255's golden test builds every combination of its large inputs in its own reference code
 * and needs more than 2 GiB.
 */
export const DEFAULT_GOLDEN_MEMORY_MB = 4096;

/** Problems that can be evaluated: only rows with golden tests. */
export type GoldenProblem = Problem & { test: string };

export function hasGoldenTests(problem: Problem): problem is GoldenProblem {
  return typeof problem.test === 'string' && problem.test.trim() !== '';
}

/**
 * Runs solutions against golden tests, measuring each problem's reference once (on first use)
 * to set that problem's time limit.
 */
export class GoldenRunner {
  private readonly references = new Map<string, Promise<ReferenceRun>>();

  constructor(
    private readonly sandbox: Sandbox,
    private readonly policy: TimeLimitPolicy = DEFAULT_TIME_LIMITS,
    private readonly memoryMb: number = DEFAULT_GOLDEN_MEMORY_MB,
  ) {}

  /** The reference's run (measured once per problem; later calls share the first measurement). */
  reference(problem: GoldenProblem): Promise<ReferenceRun> {
    let run = this.references.get(problem.questionId);
    if (!run) {
      run = this.execute(problem, problem.gtCode, this.policy.referenceMs, 'reference').then(({ outcome, durationMs, detail }) => ({
        questionId: problem.questionId,
        outcome,
        durationMs,
        timeLimitMs: timeLimitMs(this.policy, durationMs),
        detail,
      }));
      this.references.set(problem.questionId, run);
    }
    return run;
  }

  /** Runs `code` against the problem's golden tests; `owner` as in ProgramOptions (mutants are the reference's). */
  async run(problem: GoldenProblem, code: string, owner: ProgramOptions['owner'] = 'candidate'): Promise<GoldenRun> {
    const { timeLimitMs: limit } = await this.reference(problem);
    return this.execute(problem, code, limit, owner);
  }

  /** Every reference measured so far, in the order they were first asked for. */
  async measuredReferences(): Promise<ReferenceRun[]> {
    return Promise.all(this.references.values());
  }

  private async execute(problem: GoldenProblem, code: string, limit: number, owner: ProgramOptions['owner']): Promise<GoldenRun> {
    const codes = drawExitCodes();
    const result = await this.sandbox.runProgram(goldenProgram(code, problem.test, problem.entryPoint, codes), {
      timeoutMs: limit,
      memoryMb: this.memoryMb,
      owner,
    });
    const outcome = classify(result, codes);
    return {
      outcome,
      durationMs: result.durationMs,
      timeLimitMs: limit,
      detail: outcome === 'pass' ? '' : describeFailure(result, outcome),
    };
  }
}

function describeFailure(result: { status: string; exitCode: number | null; stderr: string }, outcome: GoldenOutcome): string {
  if (outcome === 'timeout') return 'timed out';
  const tail = result.stderr.trim().slice(-DETAIL_CHARS);
  if (result.status === 'killed') return `killed by a signal (memory or CPU limit)${tail ? `: ${tail}` : ''}`;
  if (result.status === 'ok') return `exited with status 0 before the golden tests ran${tail ? `: ${tail}` : ''}`;
  return tail || `exited with status ${result.exitCode}`;
}
