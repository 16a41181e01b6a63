import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadProblems } from '../../../activities/dataset/index.js';
import { promptVersions, renderCodePrompt, renderTestPrompt, requestSeed } from '../../../activities/llm/index.js';
import { sharedParquet, sharedParquetRows } from '../dataset/helpers.js';
import { problems } from './fixtures.js';

const [add, rev, biggest] = problems as [(typeof problems)[0], (typeof problems)[0], (typeof problems)[0]];

describe('prompts', () => {
  it('renders the code prompt with the header as the question', () => {
    assert.deepEqual(renderCodePrompt(add), {
      version: 'code-v1',
      messages: [
        { role: 'system', content: 'You are a helpful code completion assistant.' },
        {
          role: 'user',
          content:
            "Given the following Question, complete the function. Output the complete function inside '```python ... ```' code block, and do not output anything else.\n" +
            '\n' +
            'Question:\n' +
            'def add(a, b):\n' +
            '    """Return the sum of a and b."""\n',
        },
      ],
    });
  });

  it('names the function to write when a problem has no header', () => {
    assert.equal(
      renderCodePrompt(rev).messages[1]!.content,
      "Given the following Question, complete the function. Output the complete function inside '```python ... ```' code block, and do not output anything else.\n" +
        '\n' +
        'Question:\n' +
        'Return the string s reversed.\n' +
        '\n' +
        'Write it as a Python function named `rev`.',
    );
  });

  it('renders the code prompt word for word as the reference prompts of HumanEval+ and MBPP+', async () => {
    const rows = await sharedParquetRows();
    const { problems: loaded } = await loadProblems(sharedParquet);
    const byId = new Map(loaded.map((p) => [p.questionId, p]));
    for (const id of ['HumanEval/0', 'HumanEval/163', 'MBPP/82', 'MBPP/2']) {
      const row = rows.find((r) => (r.extra_info as { question_id: string }).question_id === id);
      assert.ok(row, `row ${id} is in the shared set`);
      const expected = (row.prompt as { role: string; content: string }[]).map(({ role, content }) => ({ role, content }));
      assert.deepEqual(renderCodePrompt(byId.get(id)!).messages, expected, id);
    }
  });

  it('renders the white-box test prompt with the question, the candidate as Buggy Code and T asserts', () => {
    const prompt = renderTestPrompt(biggest, 'def biggest(xs):\n    return xs[0]\n\n', 3);
    assert.equal(prompt.version, 'test-whitebox-v1');
    assert.equal(prompt.messages[0]!.content, 'You are a helpful test generation assistant that writes assertion tests to expose bugs in Python code.');
    assert.equal(
      prompt.messages[1]!.content,
      `Given the following Question and a Buggy Code that attempts to solve it, write 3 test cases that expose the bugs of the Buggy Code: each test must pass on a correct solution of the Question and fail on the Buggy Code.

Requirements:
- Write each test as one assertion of the form \`assert biggest(args) == expected\`, where \`expected\` is the exact value a correct solution returns.
- Attack the logic gaps of the Buggy Code: find where its behaviour departs from what the Question asks.
- Prefer complex inputs: boundary values, edge cases and rarely taken branches.
- Do not write trivial or redundant tests that check the same behaviour twice.
- Only the first 3 tests count, so put the strongest first.
- Output all assertions inside one '\`\`\`python ... \`\`\`' code block, and do not output anything else.

Question:
def biggest(xs):
    """Return the largest element of a non-empty list xs."""

Buggy Code:
\`\`\`python
def biggest(xs):
    return xs[0]
\`\`\``,
    );
    assert.deepEqual(promptVersions, { code: 'code-v1', test: 'test-whitebox-v1', testBlackBox: 'test-blackbox-v1' });
  });
});

describe('request seeds', () => {
  const base = { role: 'test' as const, runSeed: 7, iteration: 3, questionId: 'HumanEval/1', candidateIndex: 2 };

  it('are the same for the same request, so a retry samples the same answers', () => {
    assert.equal(requestSeed(base), requestSeed({ ...base }));
    // sha256 of the JSON array ["test",7,3,"HumanEval/1",2], first 4 bytes, top bit cleared: pinned
    // because changing the derivation silently changes what every run samples.
    assert.equal(requestSeed(base), 1_807_264_883);
  });

  it('differ across run seed, iteration, problem, candidate and role, and fit in 31 bits', () => {
    const variants = [
      base,
      { ...base, runSeed: 8 },
      { ...base, iteration: 4 },
      { ...base, questionId: 'HumanEval/2' },
      { ...base, candidateIndex: 3 },
      { ...base, role: 'code' as const, candidateIndex: undefined },
    ].map(requestSeed);
    assert.equal(new Set(variants).size, variants.length);
    for (const seed of variants) assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31);
  });
});
