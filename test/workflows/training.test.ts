import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { codeA1Training, pauseSignal, progressQuery, resumeSignal, stopSignal } from '../../workflows/training.js';
import { taskQueues } from '../../workflows/contract.js';
import type { TrainingProgress } from '../../workflows/contract.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { rawConfig, tempDir } from '../support/config.js';
import { appliedCounts, readJournal } from '../support/journal.js';
import { recordingStages } from '../support/recording-stages.js';
import { until } from '../support/processes.js';

describe('codeA1Training', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  function start(config: ReturnType<typeof rawConfig>): Promise<WorkflowHandle<typeof codeA1Training>> {
    return client.workflow.start(codeA1Training, {
      taskQueue: taskQueues.orchestration,
      workflowId: config.runId,
      args: [{ config }],
    });
  }

  it('rejects an invalid config with a non-retryable error that names the field', async () => {
    const dir = await tempDir();
    const config = { ...rawConfig(`${dir}/store`), algorithm: { alpha: 2 } };
    const handle = await start(config);
    await withWorker(recordingStages({ journal: `${dir}/journal`, gateDir: dir }), async () => {
      await assert.rejects(handle.result(), (err: unknown) => {
        assert.ok(err instanceof WorkflowFailedError);
        assert.match(String(err.cause?.message), /algorithm\.alpha: Too big/);
        return true;
      });
    });
  });

  it('runs every iteration once, continuing as new to keep each history short', async () => {
    const dir = await tempDir();
    const config = rawConfig(`${dir}/store`, { iterations: 3, continueAsNewEvery: 1 });
    const handle = await start(config);
    const progress = await withWorker(recordingStages({ journal: `${dir}/journal`, gateDir: dir }), () => handle.result());
    assert.equal(progress.completedIterations, 3);
    assert.equal(progress.last?.iteration, 2);
    const counts = appliedCounts(await readJournal(`${dir}/journal`), config.runId);
    for (const iteration of [0, 1, 2]) assert.equal(counts[`${iteration} execute`], 1);
    // Visibility is eventually consistent: wait for both continued runs to be listed.
    await until('two continued-as-new runs in visibility', async () => {
      let continued = 0;
      for await (const execution of client.workflow.list({ query: `WorkflowId = '${config.runId}'` })) {
        if (execution.status.name === 'CONTINUED_AS_NEW') continued++;
      }
      return continued === 2;
    });
  });

  it('holds between iterations while paused and stops after the current iteration when told', async () => {
    const dir = await tempDir();
    const config = rawConfig(`${dir}/store`, { iterations: 10 });
    await writeFile(`${dir}/execute`, '');
    const handle = await start(config);
    const journal = `${dir}/journal`;
    const final = await withWorker(recordingStages({ journal, gateDir: dir }), async () => {
      await until('iteration 0 to reach execute', async () => (await readJournal(journal)).some((e) => e.stage === 'execute'));
      await handle.signal(pauseSignal);
      await rm(`${dir}/execute`);
      await until('iteration 0 to complete', async () => (await handle.query(progressQuery)).completedIterations === 1);
      await sleep(1_000);
      const paused: TrainingProgress = await handle.query(progressQuery);
      assert.equal(paused.paused, true);
      assert.equal(paused.completedIterations, 1, 'no iteration may start while paused');
      assert.equal(paused.currentIteration, null);
      await writeFile(`${dir}/execute`, '');
      await handle.signal(resumeSignal);
      await until('iteration 1 to reach execute', async () =>
        (await readJournal(journal)).some((e) => e.stage === 'execute' && e.iteration === 1),
      );
      await handle.signal(stopSignal);
      await rm(`${dir}/execute`);
      return handle.result();
    });
    assert.equal(final.completedIterations, 2, 'the running iteration finishes, then the run stops');
    assert.equal(final.stopping, true);
  });

  it('continues after the last completed iteration when the same run is started again', async () => {
    const dir = await tempDir();
    const journal = `${dir}/journal`;
    const config = rawConfig(`${dir}/store`, { iterations: 3 });
    await writeFile(`${dir}/1.generateTests`, '');
    const first = await start(config);
    await withWorker(recordingStages({ journal, gateDir: dir }), async () => {
      await until('iteration 1 to generate tests', async () =>
        (await readJournal(journal)).some((e) => e.stage === 'generateTests' && e.iteration === 1),
      );
      await first.terminate('simulated crash of the whole run');
    });
    await rm(`${dir}/1.generateTests`);
    const again = await start(config);
    const progress = await withWorker(recordingStages({ journal, gateDir: dir }), () => again.result());
    assert.equal(progress.completedIterations, 3);
    const counts = appliedCounts(await readJournal(journal), config.runId);
    for (const iteration of [0, 1, 2]) {
      for (const stage of ['sampleBatch', 'generateCode', 'generateTests', 'execute', 'score', 'updateMistakeBook']) {
        assert.equal(counts[`${iteration} ${stage}`], 1, `iteration ${iteration} ${stage} applied once`);
      }
    }
    const calls = (await readJournal(journal)).filter((e) => e.kind === 'call' && e.iteration === 0 && e.stage === 'execute');
    assert.equal(calls.length, 1, 'a completed iteration is not run again');
  });
});
