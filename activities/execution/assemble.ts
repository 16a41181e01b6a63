import type { CodeRollout, TestRollout } from '../records.js';
import type { BookEntry } from '../mistake-book/index.js';
import type { ProblemExecution } from '../scoring/index.js';
import type { RunTestsResult, TestCase, ValidatedTest } from '../sandbox/index.js';

/** The rollouts of one problem: candidates by index, and each candidate's test responses by index. */
export interface ProblemRollouts {
  questionId: string;
  candidates: CodeRollout[];
  responses: Map<number, TestRollout[]>;
}

export function groupRollouts(code: CodeRollout[], tests: TestRollout[]): Map<string, ProblemRollouts> {
  const problems = new Map<string, ProblemRollouts>();
  for (const rollout of code) {
    let problem = problems.get(rollout.questionId);
    if (!problem) problems.set(rollout.questionId, (problem = { questionId: rollout.questionId, candidates: [], responses: new Map() }));
    problem.candidates.push(rollout);
  }
  for (const rollout of tests) {
    const problem = problems.get(rollout.questionId);
    if (!problem) continue;
    const list = problem.responses.get(rollout.candidateIndex) ?? [];
    list.push(rollout);
    problem.responses.set(rollout.candidateIndex, list);
  }
  for (const problem of problems.values()) {
    problem.candidates.sort((a, b) => a.candidateIndex - b.candidateIndex);
    for (const list of problem.responses.values()) list.sort((a, b) => a.responseIndex - b.responseIndex);
  }
  return problems;
}

/** The oracle's verdict on one distinct assert text of a problem. */
export interface Verdict {
  valid: boolean;
  /** Canonical text when valid (`assert <call> == <reference value>`), the raw text otherwise. */
  text: string;
  test: TestCase | null;
}

/**
 * Turns the reference's validation of a problem's distinct assert texts into verdicts. The texts
 * were deduplicated before validation, so a "duplicate" here is a different spelling of a valid
 * test (`f(1)` and `f( 1 )`): valid, with the same canonical text. Duplicates within one response
 * are the scoring core's business, decided on these canonical texts.
 */
export function verdicts(texts: string[], validated: ValidatedTest[]): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  texts.forEach((text, i) => {
    const v = validated[i]!;
    const sameTestRespelled = v.reason === 'duplicate' && v.call !== null && v.expected !== null;
    if ((v.valid || sameTestRespelled) && v.call && v.expected !== null) {
      out.set(text, { valid: true, text: v.canonical ?? `assert ${v.call.text} == ${v.expectedRepr}`, test: { call: v.call, expected: v.expected } });
    } else {
      out.set(text, { valid: false, text, test: null });
    }
  });
  return out;
}

/** The tests one candidate runs: the book's top-K first, then its responses' distinct valid tests. */
export function candidateTests(book: Verdict[], responses: TestRollout[], judged: Map<string, Verdict>): { cases: TestCase[]; index: Map<string, number> } {
  const cases: TestCase[] = [];
  const index = new Map<string, number>();
  const add = (v: Verdict) => {
    if (!v.valid || !v.test || index.has(v.text)) return;
    index.set(v.text, cases.length);
    cases.push(v.test);
  };
  for (const v of book) add(v);
  for (const response of responses) for (const raw of response.asserts) add(judged.get(raw)!);
  return { cases, index };
}

/** One candidate's record: its validity, the book outcomes and every assert of every response. */
export function candidateExecution(
  code: CodeRollout,
  book: Verdict[],
  responses: TestRollout[],
  judged: Map<string, Verdict>,
  run: { result: RunTestsResult; index: Map<string, number> } | null,
): ProblemExecution['candidates'][number] {
  const valid = run !== null && run.result.codeValid && code.code !== null;
  const passed = (text: string): boolean => {
    const i = run?.index.get(text);
    return i !== undefined && run!.result.tests[i]!.outcome === 'pass';
  };
  return {
    valid,
    // A book test the reference no longer validates cannot be run: it counts as not passed, so
    // it never earns a candidate the book's reward.
    mistakeBookPassed: valid ? book.map((v) => v.valid && passed(v.text)) : [],
    responses: responses.map((response) => ({
      nonprintableRatio: response.nonprintableRatio,
      asserts: response.asserts.map((raw) => {
        const v = judged.get(raw)!;
        return v.valid ? { test: v.text, valid: true, passed: valid ? passed(v.text) : null } : { test: v.text, valid: false };
      }),
    })),
  };
}

export function problemExecution(questionId: string, page: BookEntry[], candidates: ProblemExecution['candidates']): ProblemExecution {
  return { questionId, mistakeBook: page, candidates };
}
