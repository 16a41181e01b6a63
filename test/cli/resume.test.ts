import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import type { codeA1Training } from '../../workflows/training.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import type { TrainingInput } from '../../workflows/contract.js';
import { openStore } from '../../activities/storage/index.js';
import { connectClient, temporalAddress, testNamespace } from '../support/temporal.js';
import { rawConfig, tempDir } from '../support/config.js';
import { callCounts, readJournal } from '../support/journal.js';
import type { Child } from '../support/processes.js';
import { killHard, startScript, until } from '../support/processes.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const stageWorker = fileURLToPath(new URL('../support/stage-worker.ts', import.meta.url));

/** `code-a1 resume` as a user runs it, against the test namespace, in a scratch directory. */
function resumeCli(args: string[], cwd: string) {
  return execa(process.execPath, [bin, 'resume', ...args], {
    cwd,
    reject: false,
    all: true,
    env: { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: testNamespace },
  });
}

describe('code-a1 resume', () => {
  let client: Client;
  let close: () => Promise<void>;
  let worker: Child;
  let dir: string;
  before(async () => {
    ({ client, close } = await connectClient());
    dir = await tempDir();
    worker = await startScript(stageWorker, [`${dir}/journal`, dir]);
  });
  after(async () => {
    await killHard(worker);
    await close();
  });

  /** Starts a run, lets it complete one iteration, and terminates it in the middle of the second. */
  async function terminatedRun(input: (config: ReturnType<typeof rawConfig>) => TrainingInput) {
    const config = rawConfig(`${dir}/store-${Math.random().toString(36).slice(2)}`, { iterations: 3 });
    const store = openStore(config.storageUri);
    const completed = async () => (await store.list(keys.iterationRecords(config.runId))).length;
    const gate = `${dir}/1.execute`;
    await writeFile(gate, '');
    const handle = await client.workflow.start<typeof codeA1Training>('codeA1Training', { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [input(config)] });
    await until('iteration 1 to reach execute', async () =>
      (await readJournal(`${dir}/journal`)).some((e) => e.kind === 'call' && e.runId === config.runId && e.iteration === 1 && e.stage === 'execute'),
    60_000);
    await handle.terminate('operator pressed the wrong button');
    await rm(gate);
    assert.equal(await completed(), 1);
    return { config, completed };
  }

  it('continues a terminated run from its last completed iteration to the target of its config', async () => {
    const { config, completed } = await terminatedRun((config) => ({ config }));
    const result = await resumeCli([config.runId], dir);
    assert.equal(result.exitCode, 0, result.all);
    assert.match(result.all, /continues after its last completed iteration/);
    assert.match(result.all, /report: .*\.html/);
    assert.equal(await completed(), 3);
    // The stages are stand-ins (what `resume` decides is orchestration alone): count how often the
    // resumed run called them. Iteration 0 had completed and runs no stage again; iteration 1 was
    // cut off in execute, so it reached updateMistakeBook only once, after the resume.
    const calls = callCounts(await readJournal(`${dir}/journal`), config.runId);
    const stages = ['sampleBatch', 'generateCode', 'generateTests', 'execute', 'score', 'updateMistakeBook', 'updatePolicy-code', 'updatePolicy-test'];
    assert.deepEqual(stages.map((s) => [s, calls[`0 ${s}`]]), stages.map((s) => [s, 1]), 'the completed iteration ran once');
    for (const i of [1, 2]) assert.equal(calls[`${i} updateMistakeBook`], 1, `iteration ${i} updated the Mistake Book once`);
  });

  it('keeps the target of a nightly firing (N more than were completed when it started)', async () => {
    // The firing started with 0 done and aimed for 2; restarting it with "2 more" would aim for 3.
    const { config, completed } = await terminatedRun((config) => ({ config, moreIterations: 2 }));
    const result = await resumeCli([config.runId], dir);
    assert.equal(result.exitCode, 0, result.all);
    assert.equal(await completed(), 2);
  });

  it('says what to do for a run it cannot find', async () => {
    const result = await resumeCli(['no-such-run-anywhere'], dir);
    assert.equal(result.exitCode, 2);
    assert.match(result.all, /no run 'no-such-run-anywhere' .*--config FILE/);
  });
});
