import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { codeA1Training } from '../../workflows/training.js';
import { taskQueues } from '../../workflows/contract.js';
import { connectClient } from '../support/temporal.js';
import { rawConfig, tempDir } from '../support/config.js';
import { appliedCounts, readJournal } from '../support/journal.js';
import type { Child } from '../support/processes.js';
import { killHard, startScript, until } from '../support/processes.js';
import { privateTemporal } from '../support/private-temporal.js';

const stageWorker = fileURLToPath(new URL('../support/stage-worker.ts', import.meta.url));
const everyStage = ['sampleBatch', 'generateCode', 'generateTests', 'execute', 'score', 'updateMistakeBook', 'updatePolicy-code', 'updatePolicy-test'];

/** Starts a run whose `stage` of iteration 0 blocks until the test releases it. */
async function blockedRun(client: Client, stage: string) {
  const dir = await tempDir();
  const config = rawConfig(`${dir}/store`, { iterations: 1 });
  await writeFile(`${dir}/0.${stage}`, '');
  const handle = await client.workflow.start(codeA1Training, { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [{ config }] });
  const journal = `${dir}/journal`;
  const reached = () => until(`${stage} to start`, async () => (await readJournal(journal)).some((e) => e.kind === 'call' && e.runId === config.runId && e.stage === stage));
  return { dir, journal, handle, runId: config.runId, reached, release: () => rm(`${dir}/0.${stage}`) };
}

function assertEveryStageAppliedOnce(counts: Record<string, number>): void {
  for (const stage of everyStage) assert.equal(counts[`0 ${stage}`], 1, `${stage} applied exactly once`);
}

describe('a run survives', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  for (const stage of ['sampleBatch', 'publishPolicy-code', ...everyStage.slice(1)]) {
    it(`a worker killed with SIGKILL during ${stage}: a new worker finishes it, every stage applied once`, async () => {
      const run = await blockedRun(client, stage);
      const first: Child = await startScript(stageWorker, [run.journal, run.dir]);
      await run.reached();
      await killHard(first);
      await run.release();
      const second = await startScript(stageWorker, [run.journal, run.dir]);
      try {
        const progress = await run.handle.result();
        assert.equal(progress.completedIterations, 1);
      } finally {
        await killHard(second);
      }
      const journal = await readJournal(run.journal);
      assertEveryStageAppliedOnce(appliedCounts(journal, run.runId));
      assert.ok(journal.filter((e) => e.kind === 'call' && e.runId === run.runId && e.stage === stage).length >= 2, 'the killed stage was attempted again');
    });
  }

  it('a restart of the Temporal server in the middle of an iteration', async () => {
    const server = await privateTemporal(7299);
    const own = await connectClient(server.address);
    let worker: Child | undefined;
    try {
      const run = await blockedRun(own.client, 'execute');
      worker = await startScript(stageWorker, [run.journal, run.dir], { TEMPORAL_ADDRESS: server.address });
      await run.reached();
      await server.restart();
      await run.release();
      const progress = await run.handle.result();
      assert.equal(progress.completedIterations, 1);
      assertEveryStageAppliedOnce(appliedCounts(await readJournal(run.journal), run.runId));
    } finally {
      if (worker) await killHard(worker);
      await own.close();
      await server.stop();
    }
  });
});

