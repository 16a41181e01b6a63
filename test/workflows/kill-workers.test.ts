import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import type { codeA1Training } from '../../workflows/training.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import type { IterationRecord } from '../../workflows/contract.js';
import type { RunConfigInput } from '../../config/run-config.js';
import { getJson, openStore } from '../../activities/storage/index.js';
import type { S3Connection } from '../../activities/storage/index.js';
import { smallModelName, startModelServer } from '../../infra/model-server.js';
import type { ModelServer } from '../../infra/model-server.js';
import { connectClient } from '../support/temporal.js';
import { tempDir, uniqueRunId } from '../support/config.js';
import type { Child } from '../support/processes.js';
import { killHard } from '../support/processes.js';
import { testBucket, testS3Connection } from '../support/s3.js';
import type { S3PutCounter } from '../support/s3-put-counter.js';
import { assertWrittenOnce, startS3PutCounter } from '../support/s3-put-counter.js';
import { clampProblem, stageOutputKeys, startWorkers } from '../support/real-run.js';
import type { WorkerKind } from '../support/real-run.js';

/**
 * A whole run on the real stack end to end: the embedded model server (python/model_server.py)
 * serving SmolLM2-135M to both roles, which train LoRA adapters (small checkpoints), the
 * project's workers one process per task queue, the real sandbox, scoring, Mistake Book and
 * trainer, on the test S3 server behind a PUT counter. Each worker kind is killed with SIGKILL in
 * the middle of one of its stages, once that stage's write has reached S3 and before it answered,
 * and started again. As small as the config allows (one iteration of one problem): CI has 2 cores.
 */
describe('a whole run on the embedded SmolLM2 server', () => {
  let client: Client;
  let closeClient: () => Promise<void>;
  let counter: S3PutCounter;
  let s3: S3Connection;
  let server: ModelServer;
  let dir: string;
  const workers = new Map<WorkerKind, Child>();

  before(async () => {
    ({ client, close: closeClient } = await connectClient());
    counter = await startS3PutCounter(testS3Connection().endpoint!);
    s3 = { ...testS3Connection(), endpoint: counter.endpoint };
    dir = await tempDir('code-a1-kill-workers-');
    await writeFile(`${dir}/problems.jsonl`, JSON.stringify(clampProblem) + '\n');
    server = await startModelServer({ model: smallModelName, threads: 1 });
  });
  after(async () => {
    for (const worker of workers.values()) await killHard(worker);
    await server?.stop();
    await counter?.close();
    await closeClient();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (kind: WorkerKind) => workers.set(kind, await startWorkers([kind], s3, `${dir}/work-${kind}`, `${dir}/${kind}.log`));

  it('completes after a kill -9 of the orchestration, llm, sandbox and gpu workers mid-stage, every stage output written once', async () => {
    const prefix = `kill-workers-${randomUUID().slice(0, 8)}`;
    const runId = uniqueRunId('killed');
    const model = { baseUrl: server.baseUrl, model: server.model, checkpoint: `model:${smallModelName}`, sampling: { temperature: 1, topP: 1, maxTokens: 96 } };
    const config: RunConfigInput = {
      runId,
      storageUri: `s3://${testBucket}/${prefix}`,
      dataset: { uri: `${dir}/problems.jsonl` },
      models: { code: model, test: model },
      algorithm: { batchSize: 1, nCode: 2, nTest: 2, testsPerResponse: 2 },
      trainer: { microBatchSize: 4, lora: { rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] } },
      timeouts: { heartbeatSeconds: 30 },
      iterations: 1,
      seed: 7,
    };
    const object = (key: string) => `${testBucket}/${prefix}/${key}`;
    const outputs = stageOutputKeys(runId, 0);
    // Where each kind is killed: the write of a stage it runs, in the order the iteration reaches them.
    const kills: [WorkerKind, string][] = [
      ['llm', outputs.generateCode!],
      ['sandbox', outputs.execute!],
      ['orchestration', outputs.score!],
      ['gpu', outputs['updatePolicy-code']!],
    ];
    const holds = kills.map(([kind, key]) => ({ kind, key, ...counter.holdWrite((o) => o === object(key)) }));

    for (const kind of ['orchestration', 'llm', 'sandbox', 'gpu'] as const) await start(kind);
    const handle = await client.workflow.start<typeof codeA1Training>('codeA1Training', { taskQueue: taskQueues.orchestration, workflowId: runId, args: [{ config }] });
    const killed: string[] = [];
    for (const hold of holds) {
      await Promise.race([hold.landed, handle.result().then(() => assert.fail(`the run ended before ${hold.key} was written`))]);
      await killHard(workers.get(hold.kind)!);
      hold.release();
      await start(hold.kind);
      killed.push(hold.kind);
    }
    assert.deepEqual(killed, ['llm', 'sandbox', 'orchestration', 'gpu']);
    assert.equal((await handle.result()).completedIterations, 1);

    assertWrittenOnce(counter.writes(), object(`${keys.run(runId)}/`), Object.values(outputs).map(object));
    const record = await getJson<IterationRecord>(openStore(config.storageUri, s3), keys.iterationRecord(runId, 0));
    assert.equal(record?.checkpoints.code, `${config.storageUri}/${keys.checkpoint(runId, 'code', 0)}`);
    assert.ok((record?.metrics['generateCode.completionTokens'] ?? 0) > 0, `SmolLM2 generated the candidates: ${JSON.stringify(record?.metrics)}`);
  });
});
