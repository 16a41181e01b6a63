import type { Problem } from '../records.js';
import { questionText, type RenderedPrompt } from '../llm/index.js';

export const blackBoxTestPromptVersion = 'test-blackbox-v1';

/**
 * Black-box test generation for evaluation: the question only, no candidate to attack. The
 * requirements are the training prompt's (activities/llm/prompts.ts) less the Buggy Code, so the
 * Test LLM is evaluated on the answer format it is trained to give.
 */
export function renderBlackBoxTestPrompt(problem: Problem, tests: number): RenderedPrompt {
  const call = `${problem.entryPoint}(args)`;
  return {
    version: blackBoxTestPromptVersion,
    messages: [
      { role: 'system', content: 'You are a helpful test generation assistant that writes assertion tests for Python code.' },
      {
        role: 'user',
        content: [
          `Given the following Question, write ${tests} test cases that a correct solution of the Question passes and that an incorrect solution is likely to fail.`,
          '',
          'Requirements:',
          `- Write each test as one assertion of the form \`assert ${call} == expected\`, where \`expected\` is the exact value a correct solution returns.`,
          '- Prefer complex inputs: boundary values, edge cases and rarely taken branches.',
          '- Do not write trivial or redundant tests that check the same behaviour twice.',
          `- Only the first ${tests} tests count, so put the strongest first.`,
          "- Output all assertions inside one '```python ... ```' code block, and do not output anything else.",
          '',
          'Question:',
          questionText(problem).replace(/\s+$/, ''),
        ].join('\n'),
      },
    ],
  };
}
