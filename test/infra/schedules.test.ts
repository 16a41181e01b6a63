import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import { nightlySchedule, nightlyScheduleId } from '../../infra/schedules.js';
import { privateTemporal } from '../support/private-temporal.js';
import { keys } from '../../workflows/contract.js';
import { openStore } from '../../activities/storage/index.js';
import { connectClient } from '../support/temporal.js';
import { progressQuery } from '../../workflows/run-control.js';
import { rawConfig, tempDir } from '../support/config.js';
import type { Child } from '../support/processes.js';
import { killHard, startScript, until } from '../support/processes.js';
import { callCounts, readJournal } from '../support/journal.js';
import { writeFile, rm } from 'node:fs/promises';
import { startOrAttach } from '../../cli/follow-run.js';

const stageWorker = fileURLToPath(new URL('../support/stage-worker.ts', import.meta.url));

describe('the nightly schedule', () => {
  it('survives a server restart and continues the run by N iterations at each firing', async () => {
    const server = await privateTemporal(7298);
    const { address } = server;
    let own = await connectClient(address);
    let worker: Child | undefined;
    try {
      const dir = await tempDir();
      const config = rawConfig(`${dir}/store`, { iterations: 1 });
      const store = openStore(config.storageUri);
      const completed = async () => (await store.list(keys.iterationRecords(config.runId))).length;
      const options = nightlySchedule({ raw: config, runId: config.runId, cron: '0 2 * * *', moreIterations: 2 });
      assert.equal(options.policies?.overlap, ScheduleOverlapPolicy.SKIP);
      const handle = await own.client.schedule.create(options);

      await own.close();
      await server.restart();
      own = await connectClient(address);
      const described = await own.client.schedule.getHandle(nightlyScheduleId(config.runId)).describe();
      assert.equal(described.spec.calendars?.length, 1, 'the cron expression is kept as a calendar');
      assert.equal(described.action.type === 'startWorkflow' && described.action.workflowType, 'codeA1Nightly');
      assert.ok(described.info.nextActionTimes.length > 0, 'the schedule is still there after the restart');

      worker = await startScript(stageWorker, [`${dir}/journal`, dir], { TEMPORAL_ADDRESS: address });
      await own.client.schedule.getHandle(handle.scheduleId).trigger();
      await until('the first night to finish 2 iterations', async () => (await completed()) === 2, 60_000);
      await own.client.schedule.getHandle(handle.scheduleId).trigger();
      await until('the second night to add 2 more', async () => (await completed()) === 4, 60_000);
    } finally {
      if (worker) await killHard(worker);
      await own.close();
      await server.stop();
    }
  });
  it('a night that fires during a manual run adds its iterations to that run: one workflow, no iteration run twice', async () => {
    const server = await privateTemporal(7296);
    const own = await connectClient(server.address);
    let worker: Child | undefined;
    try {
      const dir = await tempDir();
      const journal = `${dir}/journal`;
      const config = rawConfig(`${dir}/store`, { iterations: 2 });
      worker = await startScript(stageWorker, [journal, dir], { TEMPORAL_ADDRESS: server.address });
      // The manual run holds in iteration 0's execute stage while the night fires.
      await writeFile(`${dir}/0.execute`, '');
      const manual = await startOrAttach(own.client, config.runId, { config });
      await until('iteration 0 to reach execute', async () => (await readJournal(journal)).some((e) => e.stage === 'execute'));
      const schedule = await own.client.schedule.create(nightlySchedule({ raw: config, runId: config.runId, cron: '0 2 * * *', moreIterations: 2 }));
      await own.client.schedule.getHandle(schedule.scheduleId).trigger();
      await until('the night to add its iterations to the manual run', async () => (await manual.query(progressQuery)).targetIterations === 4);
      await rm(`${dir}/0.execute`);
      const final = await manual.result();
      assert.equal(final.completedIterations, 4, 'the manual run ran its 2 iterations and the night\'s 2');
      const calls = callCounts(await readJournal(journal), config.runId);
      for (const iteration of [0, 1, 2, 3]) assert.equal(calls[`${iteration} execute`], 1, `iteration ${iteration} ran once`);
      assert.equal(calls['4 execute'], undefined, 'no fifth iteration');
      const training: string[] = [];
      for await (const w of own.client.workflow.list({ query: `WorkflowType = 'codeA1Training'` })) training.push(w.workflowId);
      assert.deepEqual(training, [config.runId], 'the night started no training workflow of its own');
      await own.client.schedule.getHandle(schedule.scheduleId).delete();
    } finally {
      if (worker) await killHard(worker);
      await own.close();
      await server.stop();
    }
  });
});
