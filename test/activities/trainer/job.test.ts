import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildRollouts, hyperparameters } from '../../../activities/trainer/index.js';
import type { TestRollout } from '../../../activities/records.js';
import { codeRollout, trainerConfig } from './helpers.js';

const code = [codeRollout('q1', 0, [1, 2], [3, 4], 'ckpt'), codeRollout('q1', 1, [1, 2], [5], 'ckpt'), codeRollout('q2', 0, [1], [6], 'other')];
const advantage = (questionId: string, candidateIndex: number, advantageA: number) => ({ questionId, candidateIndex, rewardA: 0, advantageA });

function testRollout(candidateIndex: number, responseIndex: number): TestRollout {
  const { code: _code, ...sample } = codeRollout('q1', candidateIndex, [1], [7 + responseIndex], 'ckpt');
  return { ...sample, responseIndex, asserts: [], nonprintableRatio: 0 };
}

describe('building the trainer job from rollouts and scores', () => {
  it('pairs each scored code rollout with its advantage, in the order of the scores', () => {
    const rows = buildRollouts('code', code, { code: [advantage('q2', 0, -0.5), advantage('q1', 1, 1.5)], test: [] }, 'here');
    assert.deepEqual(
      rows.map((r) => [r.questionId, r.candidateIndex, r.advantage, r.responseTokenIds]),
      [
        ['q2', 0, -0.5, [6]],
        ['q1', 1, 1.5, [5]],
      ],
    );
    assert.deepEqual(rows[1]!.promptTokenIds, [1, 2]);
  });

  it('skips rollouts with a zero advantage and rollouts the scores do not name', () => {
    const rows = buildRollouts('code', code, { code: [advantage('q1', 0, 0), advantage('q1', 1, 1)], test: [] }, 'here');
    assert.deepEqual(rows.map((r) => r.candidateIndex), [1]);
  });

  it('keys test rollouts by candidate and response index', () => {
    const tests = [testRollout(0, 0), testRollout(0, 1), testRollout(1, 0)];
    const scores = { code: [], test: [{ questionId: 'q1', candidateIndex: 0, responseIndex: 1, rewardB: 0, advantageB: -1 }] };
    const rows = buildRollouts('test', tests, scores, 'here');
    assert.deepEqual(rows.map((r) => [r.candidateIndex, r.responseIndex, r.advantage, r.responseTokenIds]), [[0, 1, -1, [8]]]);
  });

  it('leaves token ids out when the sampler returned none, so the trainer tokenises the text', () => {
    const { promptTokenIds: _p, responseTokenIds: _r, ...withoutIds } = code[0]!;
    const [row] = buildRollouts('code', [withoutIds], { code: [advantage('q1', 0, 1)], test: [] }, 'here');
    assert.equal(row!.promptTokenIds, undefined);
    assert.equal(row!.response, 'def f(): pass');
  });

  it('rejects scores that name a rollout the stage did not produce, and duplicate rollouts', () => {
    assert.throws(() => buildRollouts('code', code, { code: [advantage('q9', 0, 1)], test: [] }, 'here'), { name: 'InvalidArtifactError', message: /q9\/0/ });
    assert.throws(() => buildRollouts('code', [code[0]!, code[0]!], { code: [], test: [] }, 'here'), { name: 'InvalidArtifactError' });
  });

  it('passes the trainer section on without the launcher-only settings', () => {
    const h = hyperparameters(trainerConfig({ command: ['x'], parallelRoles: true, dtype: 'float32' }));
    assert.equal('command' in h, false);
    assert.equal('parallelRoles' in h, false);
    assert.equal(h.clipHigh, 0.28);
    assert.equal(h.dtype, 'float32');
  });
});
