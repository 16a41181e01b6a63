import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { progressLine, summaryTable } from '../../cli/progress.js';
import { iterationRecord } from './report/fixtures.js';

describe('end-of-run summary table', () => {
  const metrics = (i: number): Record<string, number> => ({
    'score.codeRewardMean': [0.25, 0.123456][i]!,
    'score.validTestRatio': [0.4, 1][i]!,
    'score.attackRate': [0.05, 0.125][i]!,
    'updateMistakeBook.bookTests': [0, 12][i]!,
    'train.code.loss': [-0.0123456, 0.25][i]!,
    'train.code.kl': [0, 0.0000123456][i]!,
    'train.test.loss': [0.5, Number.NaN][i]!,
    'score.invalidCodeRate': [0.625, 0][i]!,
    'score.testRewardMean': [0.1, 0.3][i]!,
    'duration.generateCodeMs': [120_500, 90_000][i]!,
    'duration.updatePolicyMs': [1_000, 2_400][i]!,
    'generateCode.completionTokens': 4162,
  });
  const table = summaryTable([iterationRecord('r', 0, metrics(0)), iterationRecord('r', 1, metrics(1))]);
  const lines = table.split('\n');
  const cells = (line: string) => line.trim().split(/\s+/);

  it('puts the learning signals first: rewards, valid tests, attack rate, Mistake Book, then loss and KL per role', () => {
    assert.deepEqual(cells(lines[0]!), ['code', 'valid', 'attack', 'book', 'code', 'code', 'test', 'test', 'invalid', 'test']);
    assert.deepEqual(cells(lines[1]!), ['iter', 'reward', 'tests', 'rate', 'tests', 'loss', 'KL', 'loss', 'KL', 'code', 'reward', 'seconds']);
  });

  it('prints a row per iteration: ratios as percentages, absent and NaN values as a dash, seconds summed over stages', () => {
    assert.deepEqual(cells(lines[3]!), ['0', '0.25', '40.0%', '5.0%', '0', '-0.01235', '0', '0.5', '–', '62.5%', '0.1', '122']);
    assert.deepEqual(cells(lines[4]!), ['1', '0.1235', '100.0%', '12.5%', '12', '0.25', '0.00001235', '–', '–', '0.0%', '0.3', '92']);
    assert.equal(lines.length, 5);
  });

  it('aligns every column to the right and fits in 120 columns', () => {
    assert.ok(lines.every((line) => line.length <= 120), table);
    const ends = (line: string) => [...line.matchAll(/\S+/g)].map((m) => m.index + m[0].length);
    assert.deepEqual(ends(lines[4]!), ends(lines[2]!), 'each value ends where its column rule ends');
    assert.deepEqual(ends(lines[1]!), ends(lines[2]!));
  });
});

describe('progress line', () => {
  const run = { runId: 'r', targetIterations: 3, completedIterations: 0, currentIteration: 0, paused: false, stopping: false, last: null };

  it('names the stage by its place in the algorithm, and the sampling round when dynamic sampling draws another', () => {
    const first = { iteration: 0, stage: 'score' as const, completedStages: ['sampleBatch', 'publishPolicy', 'generateCode', 'generateTests', 'execute'] as const, round: 0 };
    assert.equal(progressLine(run, { ...first, completedStages: [...first.completedStages] }, false), 'iteration 1/3 · score (stage 6/10)');
    // Round 1 runs the batch stages again: the line stays on the algorithm's stage and the bar does not run ahead.
    const again = [...first.completedStages, 'score', 'sampleBatch', 'generateCode'] as const;
    const line = progressLine(run, { iteration: 0, stage: 'generateTests', completedStages: [...again], round: 1 }, true);
    assert.match(line, /iteration 1\/3 · generateTests \(stage 4\/10, sampling round 2\)$/);
    assert.match(line, /^\[#{5}-{19}\]  20% /, '6 distinct stages of 10 in the first of 3 iterations');
  });
});
