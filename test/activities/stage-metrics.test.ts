import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricMeter, MetricTags } from '@temporalio/common';
import { recordStageMetrics } from '../../activities/stage-metrics.js';

/** A meter that keeps every recorded point as `name{tags} value`. */
function recordingMeter(points: string[], tags: MetricTags = {}): MetricMeter {
  const point = (name: string) => (value: number, extra: MetricTags = {}) => points.push(`${name}${JSON.stringify({ ...tags, ...extra })} ${value}`);
  const metric = <K extends string>(kind: K, name: string) => ({ name, kind, valueType: 'float' as const, withTags: () => assert.fail('unused') });
  return {
    createCounter: (name) => ({ ...metric('counter', name), valueType: 'int', add: point(name) }) as never,
    createGauge: (name) => ({ ...metric('gauge', name), set: point(name) }) as never,
    createHistogram: (name) => ({ ...metric('histogram', name), record: point(name) }) as never,
    withTags: (more) => recordingMeter(points, { ...tags, ...more }),
  };
}

const ref = { runId: 'r1', iteration: 0 };

describe('recordStageMetrics', () => {
  it('records generation throughput per endpoint only for an attempt that generated tokens', () => {
    const points: string[] = [];
    const input = { ...ref, model: { baseUrl: 'http://gen:8000/v1' } };
    recordStageMetrics(recordingMeter(points), 'generateTests', input, { key: 'k', summary: { tokensPerSecond: 10, generationSeconds: 3 } }, 3);
    recordStageMetrics(recordingMeter(points), 'generateTests', input, { key: 'k', summary: { samples: 8 } }, 0.01);
    assert.deepEqual(points, [
      'code_a1_generation_tokens_per_second{"run_id":"r1","role":"test","endpoint":"http://gen:8000/v1"} 10',
      'code_a1_generation_tokens{"run_id":"r1","role":"test","endpoint":"http://gen:8000/v1"} 30',
    ]);
  });

  it('records trainer throughput only for an update that ran the trainer', () => {
    const points: string[] = [];
    const record = (metrics: Record<string, number>) => recordStageMetrics(recordingMeter(points), 'updatePolicy', { ...ref, role: 'code' }, { role: 'code', checkpoint: 'c', metrics }, 60);
    record({ tokens_per_s: 500, trained: 1 });
    record({ tokens_per_s: 500, trained: 1, reusedTrainerOutput: 1 });
    record({ trained: 0 });
    assert.deepEqual(points, ['code_a1_trainer_tokens_per_second{"run_id":"r1","role":"code"} 500']);
  });

  it('counts sandbox executions on the shards, not again on their merge', () => {
    const points: string[] = [];
    const summary = { candidates: 2, validCandidates: 1, asserts: 0, validAsserts: 0, testsRun: 2, testsPassed: 2 };
    recordStageMetrics(recordingMeter(points), 'executeShard', ref, { key: 'k', summary }, 2);
    recordStageMetrics(recordingMeter(points), 'mergeExecution', ref, { key: 'k', summary }, 2);
    assert.equal(points.filter((p) => p.startsWith('code_a1_sandbox_executions{')).length, 6);
    assert.ok(points.includes('code_a1_sandbox_executions{"run_id":"r1","check":"candidate","outcome":"invalid"} 1'));
    assert.ok(points.includes('code_a1_sandbox_executions_per_second{"run_id":"r1"} 2'));
  });
});
