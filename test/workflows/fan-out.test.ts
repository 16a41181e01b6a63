import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Client } from '@temporalio/client';
import { runSyntheticIteration, startSandboxWorker } from '../../cli/commands/bench/scale.js';
import { openStore } from '../../activities/storage/index.js';
import { readShardedRecords } from '../../activities/storage/manifest.js';
import type { ProblemExecution } from '../../activities/scoring/index.js';
import { keys } from '../../workflows/contract.js';
import { connectClient, temporalAddress, testNamespace } from '../support/temporal.js';
import { tempDir } from '../support/config.js';
import { until } from '../support/processes.js';

/**
 * The execute stage fanned out over two real sandbox worker processes (`code-a1 worker sandbox`),
 * one of which is killed (SIGKILL) while it runs a shard: the shard is retried on the other after
 * its heartbeat times out, and the iteration's execution has every problem once.
 */
describe('the execute stage over two sandbox workers', () => {
  let client: Client;
  let close: () => Promise<void>;
  const workers: ChildProcess[] = [];
  before(async () => ({ client, close } = await connectClient()));
  after(async () => {
    for (const w of workers) {
      if (w.exitCode !== null || w.signalCode !== null) continue;
      const exited = once(w, 'exit');
      w.kill('SIGTERM');
      // A worker that does not stop within the grace is killed: the test must not hang on it.
      const grace = setTimeout(() => w.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(grace);
    }
    await close();
  });

  it('survives a worker killed mid-shard: every shard written once, nothing counted twice', async () => {
    workers.push(await startSandboxWorker(temporalAddress, testNamespace), await startSandboxWorker(temporalAddress, testNamespace));
    const [victim] = workers;
    const problems = 24;
    const nCode = 2;
    let killedActivity: string | undefined;
    const figures = await runSyntheticIteration(
      client,
      temporalAddress,
      testNamespace,
      `${await tempDir()}/store`,
      // Each candidate sleeps 0.3 s before it defines f, so a shard of 6 problems takes seconds.
      { problems, problemsPerShard: 6, nCode, nTest: 2, asserts: 4, candidateSleepMs: 300, heartbeatSeconds: 5 },
      async (workflowId) => {
        // Kill the victim while it runs a shard (its identity is "<pid>@<host>"); pending activities
        // say who runs what (history records an attempt's start only when the activity closes).
        await until('the first worker to run a shard', async () => {
          const { raw } = await client.workflow.getHandle(workflowId).describe();
          const running = (raw.pendingActivities ?? []).find(
            (a) => a.activityType?.name === 'executeShard' && Number(a.state) === 2 && a.lastWorkerIdentity?.startsWith(`${victim!.pid}@`),
          );
          killedActivity = running?.activityId ?? undefined;
          return running !== undefined;
        }, 120_000);
        victim!.kill('SIGKILL');
      },
    );
    assert.ok(killedActivity);
    assert.equal(figures.shards, 4);
    // The killed shard finished on the other worker, in a later attempt.
    const events = (await client.workflow.getHandle(figures.workflowId).fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === killedActivity)!;
    const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId))!.activityTaskStartedEventAttributes!;
    assert.ok(Number(started.attempt) >= 2, `attempt ${started.attempt}`);
    assert.ok(!started.identity?.startsWith(`${victim!.pid}@`));
    const store = openStore(figures.storageUri);
    const runId = figures.workflowId.replace(/\/iter-0$/, '');
    const records = await readShardedRecords<ProblemExecution>(store, `${keys.stage(runId, 0, 'execution')}/manifest.json`);
    assert.deepEqual(
      records.map((r) => r.questionId),
      Array.from({ length: problems }, (_, i) => `scale/${i}`),
    );
    assert.equal(figures.candidates, problems * nCode, 'the merged summary counts every candidate once');
    assert.equal(figures.asserts, problems * nCode * 2 * 4);
    const keysWritten = await store.list(`${keys.stage(runId, 0, 'execution')}/`);
    assert.deepEqual(keysWritten.filter((k) => /shard-\d+\.json$/.test(k)).length, 4);
  });
});
