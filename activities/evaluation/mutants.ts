import { readFile } from 'node:fs/promises';
import type { Sandbox } from '../sandbox/index.js';
import type { GoldenProblem, GoldenRunner } from './golden-runner.js';

/** One mutant of a reference: a single AST mutation at a numbered site. */
export interface Mutant {
  /** The site's number in the AST walk order of mutate.py: the mutant's stable identity. */
  site: number;
  operator: 'arithmetic' | 'comparison' | 'boolean' | 'constant' | 'return' | 'statement';
  source: string;
}

export interface MutantSet {
  questionId: string;
  /** Mutation sites found in the reference. */
  sites: number;
  /** Distinct, compilable mutants generated (at most the limit). */
  generated: number;
  /** Mutants that pass the golden tests: equivalent on their inputs, so no test can be asked to kill them. */
  equivalent: number;
  /** The mutants kept: each fails the golden tests, so a correct test can kill it. */
  mutants: Mutant[];
  /** Why the reference yielded no mutants at all (it does not parse, or the mutator raised). */
  error?: string;
}

/** The mutator did not finish (timed out or was killed): worth retrying, unlike a mutator error. */
export class MutationError extends Error {
  override name = 'MutationError';
}

/** Mutants per problem: enough to spread over every operator, few enough to run each golden test. */
export const DEFAULT_MUTANT_LIMIT = 30;

const mutator = readFile(new URL('./mutate.py', import.meta.url), 'utf8');

/**
 * The raw mutants of a reference, from mutate.py run in the sandbox (it only parses the source).
 * Deterministic: same source, same mutants, in site order.
 */
export async function rawMutants(
  sandbox: Sandbox,
  source: string,
  limit = DEFAULT_MUTANT_LIMIT,
): Promise<{ sites: number; mutants: Mutant[]; error?: string }> {
  // JSON string literals are valid Python string literals.
  const program = `${await mutator}\nSOURCE = ${JSON.stringify(source)}\nLIMIT = ${limit}\nmain()\n`;
  const result = await sandbox.runProgram(program, { timeoutMs: 30_000, owner: 'reference' });
  // The same source fails the same way every time: no mutants, and the reason is kept.
  if (result.status === 'error') return { sites: 0, mutants: [], error: result.stderr.trim().slice(-500) };
  if (result.status !== 'ok') throw new MutationError(`mutating the reference did not finish (${result.status})`);
  return JSON.parse(result.stdout) as { sites: number; mutants: Mutant[] };
}

/**
 * The mutant set of a problem: raw mutants less those the golden tests cannot tell from the
 * reference. Each mutant runs once against the golden tests, under the problem's time limit.
 */
export async function mutantSet(runner: GoldenRunner, sandbox: Sandbox, problem: GoldenProblem, limit = DEFAULT_MUTANT_LIMIT): Promise<MutantSet> {
  const { sites, mutants, error } = await rawMutants(sandbox, problem.gtCode, limit);
  const outcomes = await Promise.all(mutants.map((m) => runner.run(problem, m.source, 'reference')));
  const kept = mutants.filter((_, i) => outcomes[i]!.outcome !== 'pass');
  return {
    questionId: problem.questionId,
    sites,
    generated: mutants.length,
    equivalent: mutants.length - kept.length,
    mutants: kept,
    ...(error !== undefined ? { error } : {}),
  };
}
