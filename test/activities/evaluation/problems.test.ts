import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseEvaluationConfig } from '../../../activities/evaluation/config.js';
import { solutionProgram } from '../../../activities/evaluation/problems.js';
import { renderBlackBoxTestPrompt } from '../../../activities/llm/index.js';
import type { Problem } from '../../../activities/records.js';

const humaneval: Problem = {
  questionId: 'HumanEval/0',
  description: 'Check if two numbers are closer than a threshold.',
  entryPoint: 'has_close_elements',
  gtCode: '',
  prompt: 'from typing import List\nimport math\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    """ doc\n    from here on prose\n    """\n',
  dataSource: 'humanevalplus',
};

describe('a sampled solution as it runs', () => {
  it('gets the import lines of a code header, and only those', () => {
    assert.equal(solutionProgram(humaneval, 'def has_close_elements(n, t):\n    return False\n'), 'from typing import List\nimport math\ndef has_close_elements(n, t):\n    return False\n');
  });

  it('is left as sampled when the header is prose or absent', () => {
    assert.equal(solutionProgram({ ...humaneval, prompt: 'from a list, find close elements\n' }, 'x = 1'), 'x = 1');
    const { prompt: _prompt, ...bare } = humaneval;
    assert.equal(solutionProgram(bare, 'x = 1'), 'x = 1');
  });
});

describe('the evaluation config', () => {
  it('defaults to the paper setting: n = 32 at temperature 0.7, top_p 0.95, k in 1, 8, 16, 32', () => {
    const config = parseEvaluationConfig({
      evalId: 'e1',
      storageUri: 'file:///tmp/e1',
      dataset: { uri: 'data.parquet' },
      model: { baseUrl: 'http://127.0.0.1:8000/v1', model: 'm' },
    });
    assert.equal(config.samples, 32);
    assert.deepEqual(config.ks, [1, 8, 16, 32]);
    assert.equal(config.model.sampling.temperature, 0.7);
    assert.equal(config.model.sampling.topP, 0.95);
    assert.deepEqual(config.timeLimits, { floorMs: 10_000, factor: 4, referenceMs: 60_000 });
    assert.equal(config.memoryMb, 4096);
  });
});

describe('the black-box test prompt', () => {
  it('shows the question and asks for T asserts of the entry point, with no candidate to attack', () => {
    const { version, messages } = renderBlackBoxTestPrompt(humaneval, 5);
    assert.equal(version, 'test-blackbox-v1');
    const user = messages.at(-1)!.content;
    assert.match(user, /write 5 test cases/);
    assert.match(user, /assert has_close_elements\(args\) == expected/);
    assert.ok(user.includes(humaneval.prompt!.trimEnd()));
    assert.doesNotMatch(user, /Buggy Code/);
  });
});
