import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { realpath, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { codeA1Training } from '../../workflows/training.js';
import { iterationWorkflowId } from '../../workflows/iteration.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import type { ScoreInput } from '../../workflows/contract.js';
import type { RunConfigInput } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { resolveCheckpointRef } from '../../activities/trainer/index.js';
import { openStore } from '../../activities/storage/index.js';
import type { S3Connection } from '../../activities/storage/index.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { rawConfig, tempDir, uniqueRunId } from '../support/config.js';
import { callCounts, readJournal } from '../support/journal.js';
import type { Child } from '../support/processes.js';
import { killHard, startScript, until } from '../support/processes.js';
import { privateTemporal } from '../support/private-temporal.js';
import { recordingStages } from '../support/recording-stages.js';
import { testBucket, testS3Connection } from '../support/s3.js';
import type { S3PutCounter } from '../support/s3-put-counter.js';
import { assertWrittenOnce, notWrittenOnce, startS3PutCounter } from '../support/s3-put-counter.js';
import type { ScriptedModelServer } from '../support/scripted-model-server.js';
import { startScriptedModelServer } from '../support/scripted-model-server.js';
import { clampProblem, clampScript, stageOutputKeys, startWorkers } from '../support/real-run.js';
import { tinyModel } from '../support/tiny-model.js';

/** The activity a stage runs as (the execute stage fans out into shards). */
const activityOf: Record<string, string> = {
  sampleBatch: 'sampleBatch',
  generateCode: 'generateCode',
  generateTests: 'generateTests',
  execute: 'executeShard',
  score: 'score',
  updateMistakeBook: 'updateMistakeBook',
  'updatePolicy-code': 'updatePolicy',
  'updatePolicy-test': 'updatePolicy',
};

/** Activity types of the run's iteration 0 that took more than one attempt. */
async function retriedActivities(client: Client, runId: string): Promise<string[]> {
  const { events } = await client.workflow.getHandle(iterationWorkflowId(runId, 0)).fetchHistory();
  const types = new Map<string, string>();
  const retried: string[] = [];
  for (const e of events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1) retried.push(types.get(String(started.scheduledEventId)) ?? '');
  }
  return retried;
}

/**
 * Durability of the data: the project's own workers (`code-a1 worker all`, a process killed with
 * SIGKILL) run the real stages (sandbox, scoring, Mistake Book, trainer on a tiny random Llama,
 * publishing) on the test S3 server, behind a proxy that counts the writes that land there. Only
 * what the models write is scripted. Each kill lands at the worst moment for exactly-once: the
 * stage's output has reached S3 and the stage has not yet reported back, so the retry must find it
 * and not write it again.
 */
describe('a run on the real stages and S3 survives', () => {
  let client: Client;
  let closeClient: () => Promise<void>;
  let counter: S3PutCounter;
  let s3: S3Connection;
  let dir: string;
  let prefix: string;
  let checkpoint: string;
  let code: ScriptedModelServer;
  let test: ScriptedModelServer;

  before(async () => {
    ({ client, close: closeClient } = await connectClient());
    counter = await startS3PutCounter(testS3Connection().endpoint!);
    s3 = { ...testS3Connection(), endpoint: counter.endpoint };
    dir = await tempDir('code-a1-durability-');
    prefix = `durability-${randomUUID().slice(0, 8)}`;
    await writeFile(`${dir}/problems.jsonl`, JSON.stringify(clampProblem) + '\n');
    checkpoint = await tinyModel();
    const served = await realpath(resolveCheckpointRef(checkpoint, parseWorkerEnv(process.env).modelsDir));
    code = await startScriptedModelServer({ model: 'code-llm', checkpoint: served, script: clampScript });
    test = await startScriptedModelServer({ model: 'test-llm', checkpoint: served, script: clampScript });
  });
  after(async () => {
    await code?.close();
    await test?.close();
    await counter?.close();
    await closeClient();
    await rm(dir, { recursive: true, force: true });
  });

  const object = (key: string) => `${testBucket}/${prefix}/${key}`;

  function runConfig(): RunConfigInput {
    const model = (server: ScriptedModelServer) => ({ server: 'embedded' as const, baseUrl: server.baseUrl, model: server.model, checkpoint, sampling: { temperature: 1, topP: 1, maxTokens: 64 } });
    return {
      runId: uniqueRunId('durable'),
      storageUri: `s3://${testBucket}/${prefix}`,
      dataset: { uri: `${dir}/problems.jsonl` },
      models: { code: model(code), test: model(test) },
      algorithm: { batchSize: 1, nCode: 2, nTest: 2, testsPerResponse: 2 },
      trainer: { microBatchSize: 4 },
      timeouts: { heartbeatSeconds: 30 },
      iterations: 1,
      seed: 7,
    };
  }

  /**
   * Runs one iteration; when the write of `key` lands, `interrupt` runs while the writer waits for
   * its answer. Returns the run's ID once it completed.
   */
  async function interruptedRun(key: (runId: string) => string, interrupt: (worker: Child) => Promise<Child>, temporal?: { client: Client; address: string }): Promise<string> {
    const config = runConfig();
    const held = counter.holdWrite((o) => o === object(key(config.runId)));
    let worker = await startWorkers(['all'], s3, `${dir}/work`, `${dir}/workers.log`, temporal?.address);
    try {
      const handle: WorkflowHandle<typeof codeA1Training> = await (temporal?.client ?? client).workflow.start<typeof codeA1Training>('codeA1Training', {
        taskQueue: taskQueues.orchestration,
        workflowId: config.runId,
        args: [{ config }],
      });
      // A run that fails before the write lands fails the test here rather than waiting for ever.
      await Promise.race([held.landed, handle.result().then(() => assert.fail(`the run ended before ${key(config.runId)} was written`))]);
      worker = await interrupt(worker).finally(() => held.release());
      assert.equal((await handle.result()).completedIterations, 1);
    } finally {
      await killHard(worker);
    }
    return config.runId;
  }

  function assertEveryStageWrittenOnce(runId: string): void {
    assertWrittenOnce(counter.writes(), object(`${keys.run(runId)}/`), Object.values(stageOutputKeys(runId, 0)).map(object));
  }

  for (const stage of Object.keys(activityOf)) {
    it(`a worker killed with SIGKILL during ${stage}, after its output reached S3: a new worker finishes the run, and every output was written once`, async () => {
      const runId = await interruptedRun(
        (runId) => stageOutputKeys(runId, 0)[stage]!,
        async (worker) => {
          await killHard(worker);
          return startWorkers(['all'], s3, `${dir}/work`, `${dir}/workers.log`);
        },
      );
      assertEveryStageWrittenOnce(runId);
      assert.ok((await retriedActivities(client, runId)).includes(activityOf[stage]!), `${activityOf[stage]} ran again after the kill`);
    });
  }

  it('a restart of the Temporal server in the middle of an iteration: the run completes, and every output was written once', async () => {
    const server = await privateTemporal(7299);
    const own = await connectClient(server.address);
    try {
      const runId = await interruptedRun(
        (runId) => stageOutputKeys(runId, 0).execute!,
        async (worker) => {
          await server.restart();
          return worker;
        },
        { client: own.client, address: server.address },
      );
      assertEveryStageWrittenOnce(runId);
    } finally {
      await own.close();
      await server.stop();
    }
  });
});

const stageWorker = fileURLToPath(new URL('../support/stage-worker.ts', import.meta.url));
const standInStages = ['sampleBatch', 'publishPolicy-code', 'publishPolicy-test', 'generateCode', 'generateTests', 'execute', 'score', 'updateMistakeBook', 'updatePolicy-code', 'updatePolicy-test'];

/**
 * Orchestration alone, on stand-in stages (test/support/recording-stages.ts): what these can break
 * is the workflow's bookkeeping (a stage run again, or never finished), not stored data.
 */
describe('orchestration survives (stand-in stages)', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  // publishPolicy stores nothing; a kill during it tests only that the workflow retries it and
  // runs every other stage once.
  it('a worker killed with SIGKILL during publishPolicy: a new worker finishes the run, and no completed stage runs again', async () => {
    const dir = await tempDir();
    const config = rawConfig(`${dir}/store`, { iterations: 1 });
    await writeFile(`${dir}/0.publishPolicy-code`, '');
    const journal = `${dir}/journal`;
    const handle = await client.workflow.start<typeof codeA1Training>('codeA1Training', { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [{ config }] });
    const first = await startScript(stageWorker, [journal, dir]);
    await until('publishPolicy to start', async () => (await readJournal(journal)).some((e) => e.kind === 'call' && e.runId === config.runId && e.stage === 'publishPolicy-code'));
    await killHard(first);
    await rm(`${dir}/0.publishPolicy-code`);
    const second = await startScript(stageWorker, [journal, dir]);
    try {
      assert.equal((await handle.result()).completedIterations, 1);
    } finally {
      await killHard(second);
    }
    const calls = callCounts(await readJournal(journal), config.runId);
    assert.ok(calls['0 publishPolicy-code']! >= 2, 'the killed stage was attempted again');
    const others = standInStages.filter((s) => s !== 'publishPolicy-code' && s !== 'publishPolicy-test');
    assert.deepEqual(others.map((s) => [s, calls[`0 ${s}`]]), others.map((s) => [s, 1]));
  });

  it('the exactly-once check fails, naming the key, when a stage writes its output a second time', async () => {
    const counter = await startS3PutCounter(testS3Connection().endpoint!);
    try {
      const s3 = { ...testS3Connection(), endpoint: counter.endpoint };
      const dir = await tempDir();
      const prefix = `double-${randomUUID().slice(0, 8)}`;
      const config = rawConfig(dir, { storageUri: `s3://${testBucket}/${prefix}`, iterations: 1 });
      const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir, s3 });
      // A score stage that, done, writes its output again (as a retry that recomputes would).
      const writesTwice = {
        ...stages,
        async score(input: ScoreInput) {
          const result = await stages.score(input);
          await openStore(input.storageUri, s3).put(result.key, '{"stage":"score","again":true}');
          return result;
        },
      };
      const handle = await client.workflow.start<typeof codeA1Training>('codeA1Training', { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [{ config }] });
      await withWorker(writesTwice, () => handle.result());

      const object = (key: string) => `${testBucket}/${prefix}/${key}`;
      const expected = [...standInStages.map((s) => keys.stage(config.runId, 0, `${s}.json`)), keys.iterationRecord(config.runId, 0)].map(object);
      const scoreKey = object(keys.stage(config.runId, 0, 'score.json'));
      const offending = notWrittenOnce(counter.writes(), object(`${keys.run(config.runId)}/`), expected);
      assert.deepEqual([...offending], [[scoreKey, 2]]);
      assert.throws(() => assertWrittenOnce(counter.writes(), object(`${keys.run(config.runId)}/`), expected), { message: new RegExp(`not written exactly once: ${scoreKey} ×2$`) });
    } finally {
      await counter.close();
    }
  });
});
