import { extractAsserts } from '../parsing/index.js';
import type { Sandbox, TestCase } from '../sandbox/index.js';
import type { GoldenProblem } from './golden-runner.js';
import type { Mutant } from './mutants.js';

/** How k test responses of one problem score (docs/code-a1.md, Evaluation: pass@k, mut@k). */
export interface TestResponsesScore {
  questionId: string;
  /** Per response: it holds at least one assert and every assert is valid on the reference. */
  validResponses: boolean[];
  /** 1 when at least one of the k responses is valid, else 0. */
  passAtK: number;
  /** Mutants killed by at least one valid test of the k responses. */
  killed: number;
  mutants: number;
  /** killed / mutants; null for a problem without mutants (it is left out of mut@k). */
  mutAtK: number | null;
}

/**
 * Scores k responses of the Test LLM: each response's asserts are validated against the
 * reference (in the sandbox, expectations computed by the reference, never by test text), and
 * every valid test of every response runs against each mutant; a mutant is killed when it fails
 * to define the entry point or any valid test does not pass on it. A duplicate of a valid assert
 * does not make a response invalid: it is still true of the reference.
 */
export async function scoreTestResponses(
  sandbox: Sandbox,
  problem: GoldenProblem,
  responses: readonly string[],
  mutants: readonly Mutant[],
  options: { perTestTimeoutMs?: number; testsPerResponse?: number } = {},
): Promise<TestResponsesScore> {
  const perTestTimeoutMs = options.perTestTimeoutMs ?? 3_000;
  const validResponses: boolean[] = [];
  const cases: TestCase[] = [];
  for (const response of responses) {
    // As in training, only the first T asserts of a response count (the prompt says so).
    const asserts = extractAsserts(response).slice(0, options.testsPerResponse ?? Infinity);
    if (asserts.length === 0) {
      validResponses.push(false);
      continue;
    }
    const validation = await sandbox.validateTests({ reference: problem.gtCode, entryPoint: problem.entryPoint, asserts, perTestTimeoutMs });
    validResponses.push(validation.tests.every((t) => t.valid || t.reason === 'duplicate'));
    for (const t of validation.tests) if (t.valid) cases.push({ call: t.call!, expected: t.expected! });
  }
  let killed = 0;
  if (cases.length > 0) {
    const runs = await Promise.all(
      mutants.map((m) => sandbox.runTests({ code: m.source, entryPoint: problem.entryPoint, tests: cases, perTestTimeoutMs })),
    );
    killed = runs.filter((run) => !run.codeValid || run.tests.some((t) => t.outcome !== 'pass')).length;
  }
  return {
    questionId: problem.questionId,
    validResponses,
    passAtK: validResponses.some(Boolean) ? 1 : 0,
    killed,
    mutants: mutants.length,
    mutAtK: mutants.length === 0 ? null : killed / mutants.length,
  };
}

/**
 * The benchmark figures, in percent as the paper reports them: pass@k and mut@k averaged over
 * problems (mut@k over problems with mutants), and Mul = pass@k x mut@k / 100.
 */
export function testGenerationScores(scores: readonly TestResponsesScore[]): { problems: number; passAtK: number; mutAtK: number; mul: number } {
  if (scores.length === 0) throw new RangeError('no problems scored');
  const passAtK = (100 * scores.reduce((sum, s) => sum + s.passAtK, 0)) / scores.length;
  const withMutants = scores.filter((s) => s.mutAtK !== null);
  const mutAtK = withMutants.length === 0 ? 0 : (100 * withMutants.reduce((sum, s) => sum + s.mutAtK!, 0)) / withMutants.length;
  return { problems: scores.length, passAtK, mutAtK, mul: (passAtK * mutAtK) / 100 };
}
