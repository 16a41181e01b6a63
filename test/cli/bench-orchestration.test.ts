import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));

/** Pids of Temporal servers started by `bench orchestration` (their database lives in its temp dir). */
async function benchServers(): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'pid=,args=']);
  return new Set(
    stdout
      .split('\n')
      .filter((line) => line.includes('start-dev') && line.includes('code-a1-bench-'))
      .map((line) => line.trim().split(/\s+/)[0]!),
  );
}

describe('code-a1 bench orchestration', () => {
  it('prints one JSON line with the overhead per iteration and the same history events for every batch size, and stops its server', async () => {
    const before = await benchServers();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [bin, 'bench', 'orchestration', '--iterations', '2', '--rounds', '1', '--stage-ms', '20', '--batch-sizes', '4,64'],
      { timeout: 240_000 },
    );
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, 'exactly one line on stdout');
    const result = JSON.parse(lines[0]!);

    assert.equal(result.benchmark, 'orchestration');
    assert.equal(result.iterations, 2);
    for (const run of [result.instant, result.sleeping]) {
      assert.ok(run.overheadMsPerIteration > 0 && run.overheadMsPerIteration < run.msPerIteration, JSON.stringify(run));
    }
    // Overhead is wall time less activity time. Nine stage activities on each iteration's critical
    // path wait 20 ms each: the activity time the bench measured covers them, and the overhead
    // leaves them out (compared with what the stages are known to take, not with the bench's own sum).
    const { sleeping } = result;
    assert.ok(sleeping.activityMsPerIteration >= 9 * 20, `activity time ${sleeping.activityMsPerIteration} ms`);
    assert.ok(sleeping.msPerIteration - sleeping.overheadMsPerIteration >= 9 * 20, `wall ${sleeping.msPerIteration} ms, overhead ${sleeping.overheadMsPerIteration} ms`);
    assert.equal(result.overheadMsPerIteration, result.sleeping.overheadMsPerIteration);
    assert.ok(result.paperIteration.seconds > 0);
    assert.equal(typeof result.paperIteration.assumption, 'string');
    assert.equal(result.overheadPercent, Number(((100 * result.overheadMsPerIteration) / (result.paperIteration.seconds * 1000)).toFixed(3)));

    assert.deepEqual(result.history.map((h: { batchSize: number }) => h.batchSize), [4, 64]);
    const [small, large] = result.history;
    assert.ok(small.eventsPerIteration.min > 0 && small.eventsPerIteration.min <= small.eventsPerIteration.max);
    assert.equal(typeof small.nonWorkflowTaskEventsPerIteration, 'number', 'every iteration of a run has the same events beside its workflow tasks');
    assert.equal(large.nonWorkflowTaskEventsPerIteration, small.nonWorkflowTaskEventsPerIteration);
    assert.equal(large.parentNonWorkflowTaskEvents, small.parentNonWorkflowTaskEvents);
    assert.ok(small.payloadBytesPerIteration > 0);
    assert.equal(result.eventsIndependentOfBatchSize, true);

    const left = [...(await benchServers())].filter((pid) => !before.has(pid));
    assert.deepEqual(left, [], 'the private Temporal server is stopped');
  });
});
