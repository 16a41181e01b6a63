import type { ChatMessage, Problem } from '../records.js';

/**
 * Every prompt the models see, rendered here and nowhere else. A version string names each
 * template and travels with every rollout, so the trainer and later analysis know exactly what
 * a sample answered. Change a template's text: change its version.
 */
export const promptVersions = {
  code: 'code-v1',
  test: 'test-whitebox-v1',
  testBlackBox: 'test-blackbox-v1',
} as const;

export interface RenderedPrompt {
  version: string;
  messages: ChatMessage[];
}

/**
 * The question as both models see it: the HumanEval-style header (signature and docstring)
 * when the problem has one, as the reference prompt does; otherwise the task text, with the
 * function name it must define, since a bare description does not say what to call it.
 */
export function questionText(problem: Problem): string {
  if (problem.prompt !== undefined) return problem.prompt;
  return `${problem.description}\n\nWrite it as a Python function named \`${problem.entryPoint}\`.`;
}

/**
 * Step 2 of docs/code-a1.md, word for word the reference prompt of the HumanEval+/MBPP+ set
 * (its `prompt` column), so evaluation and training ask the same question.
 */
export function renderCodePrompt(problem: Problem): RenderedPrompt {
  return {
    version: promptVersions.code,
    messages: [
      { role: 'system', content: 'You are a helpful code completion assistant.' },
      {
        role: 'user',
        content:
          "Given the following Question, complete the function. Output the complete function inside '```python ... ```' code block, and do not output anything else.\n\n" +
          `Question:\n${questionText(problem)}`,
      },
    ],
  };
}

/**
 * Step 3 of docs/code-a1.md: white-box test generation. The Test LLM sees the question and one
 * candidate as "Buggy Code" and is asked for `tests` asserts of the form
 * `assert entry_point(args) == expected` that the candidate fails and a correct solution passes.
 */
export function renderTestPrompt(problem: Problem, candidate: string, tests: number): RenderedPrompt {
  return {
    version: promptVersions.test,
    messages: [
      { role: 'system', content: 'You are a helpful test generation assistant that writes assertion tests to expose bugs in Python code.' },
      {
        role: 'user',
        content: [
          `Given the following Question and a Buggy Code that attempts to solve it, write ${tests} test cases that expose the bugs of the Buggy Code: each test must pass on a correct solution of the Question and fail on the Buggy Code.`,
          '',
          'Requirements:',
          ...testRequirements(problem, tests, true),
          '',
          'Question:',
          questionText(problem).replace(/\s+$/, ''),
          '',
          'Buggy Code:',
          '```python',
          candidate.replace(/\s+$/, ''),
          '```',
        ].join('\n'),
      },
    ],
  };
}

/** The rules of an answer, shared by the white-box (training) and black-box (evaluation) prompts. */
function testRequirements(problem: Problem, tests: number, whiteBox: boolean): string[] {
  return [
    `- Write each test as one assertion of the form \`assert ${problem.entryPoint}(args) == expected\`, where \`expected\` is the exact value a correct solution returns.`,
    ...(whiteBox ? ['- Attack the logic gaps of the Buggy Code: find where its behaviour departs from what the Question asks.'] : []),
    '- Prefer complex inputs: boundary values, edge cases and rarely taken branches.',
    '- Do not write trivial or redundant tests that check the same behaviour twice.',
    `- Only the first ${tests} tests count, so put the strongest first.`,
    "- Output all assertions inside one '```python ... ```' code block, and do not output anything else.",
  ];
}

/**
 * Black-box test generation, for evaluating the Test LLM: the question only, no candidate. The
 * requirements are the training prompt's less the Buggy Code, so the Test LLM is evaluated on
 * the answer format it is trained to give.
 */
export function renderBlackBoxTestPrompt(problem: Problem, tests: number): RenderedPrompt {
  return {
    version: promptVersions.testBlackBox,
    messages: [
      { role: 'system', content: 'You are a helpful test generation assistant that writes assertion tests for Python code.' },
      {
        role: 'user',
        content: [
          `Given the following Question, write ${tests} test cases that a correct solution of the Question passes and that an incorrect solution is likely to fail.`,
          '',
          'Requirements:',
          ...testRequirements(problem, tests, false),
          '',
          'Question:',
          questionText(problem).replace(/\s+$/, ''),
        ].join('\n'),
      },
    ],
  };
}
