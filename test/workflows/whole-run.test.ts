import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { realpath, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { Client } from '@temporalio/client';
import type { codeA1Training } from '../../workflows/training.js';
import { iterationProgressQuery, iterationWorkflowId } from '../../workflows/iteration.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import { progressQuery, retryUpdate } from '../../workflows/run-control.js';
import { blockedAttribute, stageAttribute } from '../../workflows/search-attributes.js';
import type { IterationRecord } from '../../workflows/contract.js';
import type { RunConfigInput } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { resolveCheckpointRef } from '../../activities/trainer/index.js';
import { getJson, openStore } from '../../activities/storage/index.js';
import { compareText, loadBook } from '../../activities/mistake-book/index.js';
import type { ObjectStore } from '../../activities/storage/index.js';
import { localS3Connection, s3Binary, startS3, stopS3 } from '../../infra/s3-server.js';
import { freePort } from '../../infra/process.js';
import { localStack } from '../../infra/stack.js';
import { connectClient, temporalAddress } from '../support/temporal.js';
import { cli, scrape } from '../support/cli.js';
import { tempDir, uniqueRunId } from '../support/config.js';
import type { Child } from '../support/processes.js';
import { killHard, until } from '../support/processes.js';
import type { ScriptedModelServer } from '../support/scripted-model-server.js';
import { startScriptedModelServer } from '../support/scripted-model-server.js';
import { tinyModel } from '../support/tiny-model.js';
import { clampProblem, clampScript, flatProblem, flatScript, stageOutputKeys, startWorkers as startRealWorkers } from '../support/real-run.js';
import { batchIndices } from '../../activities/dataset/index.js';
import type { S3PutCounter } from '../support/s3-put-counter.js';
import { assertWrittenOnce, startS3PutCounter } from '../support/s3-put-counter.js';

/**
 * Whole runs on the real stack: the project's workers (`code-a1 worker all`) with the real
 * sandbox, scoring, Mistake Book, trainer and publishing, on a private S3 server this test can
 * take down. The policies are a tiny random Llama, because each SmolLM2-135M checkpoint with its
 * AdamW state is 1.6 GB (two runs write eight, plus local copies); CODE_A1_WHOLE_RUN_CHECKPOINT=
 * model:smollm2-135m-instruct runs the same test on the embedded default model. Only what the models write is scripted, so that every group has
 * reward variance and both policies really train: one right and one buggy candidate per problem,
 * and test responses that are valid and expose the bug, valid and miss it, or invalid. The model
 * servers are therefore stand-ins (test/support/scripted-model-server.ts) that answer the probe
 * from the loaded checkpoint's probe.json; the run on the real embedded server is
 * kill-workers.test.ts. The workers reach S3 through a PUT counter, so "written once" is counted.
 */

const bucket = 'code-a1-whole-run';

const lora = { rank: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'] };

function runConfig(
  runId: string,
  datasetPath: string,
  checkpoint: string,
  code: ScriptedModelServer,
  test: ScriptedModelServer,
  trainer: RunConfigInput['trainer'] = {},
  kind: 'embedded' | 'vllm' = 'embedded',
): RunConfigInput {
  const model = (server: ScriptedModelServer) => ({
    server: kind,
    baseUrl: server.baseUrl,
    model: server.model,
    checkpoint,
    sampling: { temperature: 1, topP: 1, maxTokens: 64 },
  });
  return {
    runId,
    storageUri: `s3://${bucket}`,
    dataset: { uri: datasetPath },
    models: { code: model(code), test: model(test) },
    algorithm: { batchSize: 1, nCode: 2, nTest: 2, testsPerResponse: 2 },
    trainer: { microBatchSize: 4, ...trainer },
    timeouts: { heartbeatSeconds: 20 },
    iterations: 2,
    seed: 7,
  };
}

describe('a whole run on the real workers, sandbox, trainer and S3', () => {
  let client: Client;
  let closeClient: () => Promise<void>;
  let store: ObjectStore;
  let s3Dir: string;
  // A free port, not a fixed one: a server left behind by a killed run must not stand in for ours.
  let s3Port: number;
  // In front of the private server: counts the writes that land, and outlives the server's outage.
  let counter: S3PutCounter;
  let dir: string;
  let datasetPath: string;
  let checkpoint: string;
  let code: ScriptedModelServer;
  let test: ScriptedModelServer;
  const workers = new Set<Child>();
  let uninterrupted: { runId: string; book: unknown } | undefined;

  const s3 = () => ({ stateDir: s3Dir, port: s3Port, buckets: [bucket] });
  const startS3Server = async () => startS3(await s3Binary(localStack.repoRoot), s3());

  before(async () => {
    ({ client, close: closeClient } = await connectClient());
    dir = await tempDir('code-a1-whole-run-');
    s3Dir = await tempDir('code-a1-whole-run-s3-');
    s3Port = await freePort();
    await startS3Server();
    store = openStore(`s3://${bucket}`, localS3Connection(s3Port));
    counter = await startS3PutCounter(localS3Connection(s3Port).endpoint!);
    datasetPath = `${dir}/problems.jsonl`;
    await writeFile(datasetPath, JSON.stringify(clampProblem) + '\n');
    checkpoint = process.env.CODE_A1_WHOLE_RUN_CHECKPOINT ?? (await tinyModel());
    // The servers start serving the initial checkpoint, as `stack up` starts the embedded ones.
    const served = await realpath(resolveCheckpointRef(checkpoint, parseWorkerEnv(process.env).modelsDir));
    code = await startScriptedModelServer({ model: 'code-llm', checkpoint: served, script: clampScript });
    test = await startScriptedModelServer({ model: 'test-llm', checkpoint: served, script: clampScript });
  });
  after(async () => {
    for (const w of workers) await killHard(w);
    await code?.close();
    await test?.close();
    await counter?.close();
    await stopS3(s3());
    await closeClient();
    // Checkpoints with their optimizer state are large: leave no copies behind.
    await rm(dir, { recursive: true, force: true });
    await rm(s3Dir, { recursive: true, force: true });
  });

  /** Workers on the counted S3 endpoint; with `metrics` (host:port) they serve Prometheus there. */
  async function startWorkers(metrics?: string): Promise<Child> {
    const env: Record<string, string> = metrics ? { CODE_A1_METRICS_ADDRESS: metrics } : {};
    const child = await startRealWorkers(['all'], workerS3(), `${dir}/work`, `${dir}/workers.log`, temporalAddress, env);
    workers.add(child);
    return child;
  }

  async function stopWorkers(child: Child): Promise<void> {
    workers.delete(child);
    await killHard(child);
  }

  const workerS3 = () => ({ ...localS3Connection(s3Port), endpoint: counter.endpoint });

  /**
   * What a user sees of a blocked run besides the query: `report`'s status line (read from S3 as
   * the user's shell would, with the worker's credentials) and the Prometheus gauge. A run blocked
   * before its first record has no HTML to write: report says so and exits 2, after the line.
   */
  async function assertBlockedSeen(runId: string, metrics: string, line: RegExp, reportExit = 0): Promise<void> {
    const s3 = workerS3();
    const report = await cli(['report', runId, '--storage', `s3://${bucket}`, '--out', `${dir}/${runId}.html`], {
      CODE_A1_S3_ENDPOINT: s3.endpoint!,
      AWS_ACCESS_KEY_ID: s3.accessKeyId!,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey!,
      AWS_REGION: s3.region,
    });
    assert.equal(report.code, reportExit, report.stderr);
    assert.match(report.stderr, line);
    assert.deepEqual(await scrape(metrics, 'code_a1_run_blocked', { run_id: runId }), [1]);
  }

  const start = (config: RunConfigInput) =>
    client.workflow.start<typeof codeA1Training>('codeA1Training', { taskQueue: taskQueues.orchestration, workflowId: config.runId, args: [{ config }] });

  /** The stage the run's current iteration is in, or undefined between iterations. */
  async function stageOf(runId: string, iteration: number): Promise<string | undefined> {
    const progress = await client.workflow.getHandle(iterationWorkflowId(runId, iteration)).query(iterationProgressQuery).catch(() => undefined);
    return progress?.stage;
  }

  /** PIDs of the trainer processes updating `role` of `runId` at `iteration` (job files live under the work dir). */
  async function trainerPids(runId: string, role: string, iteration: number): Promise<number[]> {
    const { stdout } = await execa('pgrep', ['-f', `update-policy/${runId}/${role}/iter-${iteration}/`], { reject: false });
    return stdout.split('\n').filter(Boolean).map(Number);
  }

  /** The Mistake Book the run's last iteration (1) saved, as [questionId, page] pairs in id order. */
  async function finalBook(runId: string): Promise<unknown> {
    const book = await loadBook(store, runId, 2);
    return [...book.problems].sort(([a], [b]) => compareText(a, b));
  }

  /** Every object a run wrote under `prefix`, relative to the run. */
  async function written(runId: string, prefix: string): Promise<string[]> {
    return (await store.list(`${keys.run(runId)}/${prefix}`)).map((k) => k.slice(keys.run(runId).length + 1)).sort();
  }

  it('trains both roles in every iteration and serves the new weights to the next one', async () => {
    const runId = uniqueRunId('whole');
    const loaded = { code: code.loads.length, test: test.loads.length };
    const worker = await startWorkers();
    try {
      const progress = await (await start(runConfig(runId, datasetPath, checkpoint, code, test))).result();
      assert.equal(progress.completedIterations, 2);
    } finally {
      await stopWorkers(worker);
    }
    for (const iteration of [0, 1]) {
      const record = await getJson<IterationRecord>(store, keys.iterationRecord(runId, iteration));
      assert.ok(record);
      for (const role of ['code', 'test'] as const) {
        assert.equal(record.checkpoints[role], `${store.uri}/${keys.checkpoint(runId, role, iteration)}`);
        const metric = (name: string): number | undefined => record.metrics[`train.${role}.${name}`];
        assert.equal(metric('trained'), 1, `iteration ${iteration} trained ${role}: ${JSON.stringify(record.metrics)}`);
        assert.ok(metric('steps_this_run')! > 0 && metric('rollouts')! > 0);
        assert.ok(Number.isFinite(metric('loss')) && Number.isFinite(metric('kl')) && metric('grad_norm')! > 0);
      }
    }
    // Iteration 1 sampled from iteration 0's weights: both endpoints were told to load them.
    // Iteration 0 sampled from the initial weights the servers started with; iteration 1 from
    // iteration 0's checkpoints, which each server was told to load once.
    for (const [role, server] of [['code', code], ['test', test]] as const) {
      const loads = server.loads.slice(loaded[role]);
      assert.equal(loads.length, 1, `${role}: ${JSON.stringify(loads)}`);
      assert.match(loads[0]!, /-attempt-\d+-[0-9a-f]+$/, 'a checkpoint the trainer wrote, materialised on the llm worker');
    }
    const book = await finalBook(runId);
    assert.ok(JSON.stringify(book).includes('clamp(-5, 0, 10) == 0'), `the test that broke the buggy candidate is in the book: ${JSON.stringify(book)}`);
    uninterrupted = { runId, book };
  });

  it('dynamic sampling: a batch without reward variance draws another round, and both roles train on the joined rounds', async () => {
    const runId = uniqueRunId('rounds');
    // Two problems, the flat one first: a seed whose iteration-0 batch (one problem) is the flat one.
    const rounds = `${dir}/rounds.jsonl`;
    await writeFile(rounds, [flatProblem, clampProblem].map((p) => JSON.stringify(p)).join('\n') + '\n');
    const seed = [...Array(64).keys()].find((s) => batchIndices(2, { seed: s, iteration: 0, batchSize: 1 })[0] === 0)!;
    code.script = flatScript;
    test.script = flatScript;
    await code.restart(0);
    await test.restart(0);
    const worker = await startWorkers();
    try {
      const config = { ...runConfig(runId, rounds, checkpoint, code, test), iterations: 1, seed };
      assert.equal((await (await start(config)).result()).completedIterations, 1);
    } finally {
      code.script = clampScript;
      test.script = clampScript;
      await stopWorkers(worker);
    }
    const record = await getJson<IterationRecord>(store, keys.iterationRecord(runId, 0));
    assert.ok(record);
    const m = record.metrics;
    assert.equal(m['score.rounds'], 2, JSON.stringify(m));
    assert.equal(m['score.problems'], 2);
    assert.equal(m['score.codeGroupsDropped'], 1, 'the flat problem');
    for (const role of ['code', 'test'] as const) assert.equal(m[`train.${role}.trained`], 1, `${role} trained on round 1's groups`);
    // Round 0 alone would have trained nothing: its scores hold no advantage.
    const round0 = await getJson<{ code: unknown[]; summary: Record<string, number> }>(store, keys.stage(runId, 0, 'scores.json'));
    assert.equal(round0?.summary.codeGroupsWithVariance, 0);
    const book = await loadBook(store, runId, 1);
    assert.ok(book.problems.has('whole-run/clamp'), 'the Mistake Book took round 1\'s problem');
    // Every round's outputs and the joined ones were written once.
    const once = [
      ...Object.values(stageOutputKeys(runId, 0)),
      keys.stage(runId, 0, 'round-1/batch.json'),
      keys.stage(runId, 0, 'round-1/scores.json'),
      keys.stage(runId, 0, 'merged/scores.json'),
      keys.stage(runId, 0, 'merged/code/manifest.json'),
      keys.stage(runId, 0, 'merged/tests/manifest.json'),
    ];
    assertWrittenOnce(counter.writes(), `${bucket}/${keys.run(runId)}/`, once.map((key) => `${bucket}/${key}`));
  });

  it('a server that ignores reloads blocks the run at publishPolicy within its budget; retry once it loads them completes the run', async () => {
    const runId = uniqueRunId('stale');
    const metrics = `127.0.0.1:${await freePort()}`;
    const worker = await startWorkers(metrics);
    const config = { ...runConfig(runId, datasetPath, checkpoint, code, test), retries: { publish: 2, initialIntervalSeconds: 0.2, maximumIntervalSeconds: 0.5 } };
    // From the initial weights: weights an earlier test's run trained (same seed, same data) would
    // pass this run's probe, and the stale server would not be stale.
    await code.restart(0);
    code.ignoreReloads = true;
    try {
      const handle = await start(config);
      await until('the run to block', async () => {
        const progress = await handle.query(progressQuery);
        assert.notEqual(progress.completedIterations, 2, 'the run completed: the stale server was not caught');
        return Boolean(progress.blocked);
      }, 600_000);
      const { blocked, completedIterations } = await handle.query(progressQuery);
      assert.equal(completedIterations, 1, 'iteration 0 sampled from the initial weights, which the server has');
      assert.equal(blocked?.iteration, 1);
      assert.equal(blocked?.stage, 'publishPolicy');
      assert.equal(blocked?.attempts, 2);
      assert.equal(blocked?.errorType, 'ServedCheckpointChangedError');
      assert.match(blocked?.error ?? '', /does not serve .*checkpoints\/code\/iter-0/);
      const attributes = (await handle.describe()).typedSearchAttributes;
      assert.equal(attributes.get(blockedAttribute), true);
      assert.equal(attributes.get(stageAttribute), 'publishPolicy');
      await assertBlockedSeen(runId, metrics, /Blocked: 1 iteration complete; blocked since .* in iteration 1, stage publishPolicy \(publishPolicy\) after 2 attempts: ServedCheckpointChangedError/);

      code.ignoreReloads = false;
      await handle.executeUpdate(retryUpdate);
      const final = await handle.result();
      assert.equal(final.completedIterations, 2);
      assert.deepEqual(await scrape(metrics, 'code_a1_run_blocked', { run_id: runId }), [0]);
      const records = await written(runId, 'iterations/');
      assert.deepEqual(records, ['iterations/00000000.json', 'iterations/00000001.json']);
      // Blocking and retrying wrote nothing twice: every stage output of both iterations once.
      const outputs = [0, 1].flatMap((i) => Object.values(stageOutputKeys(runId, i)));
      assertWrittenOnce(counter.writes(), `${bucket}/${keys.run(runId)}/`, outputs.map((key) => `${bucket}/${key}`));
    } finally {
      code.ignoreReloads = false;
      await stopWorkers(worker);
    }
  });

  it('a trainer that hangs blocks the run at updatePolicy within its budget; retry after it is fixed completes the run', async () => {
    const runId = uniqueRunId('hang');
    const hang = `${dir}/${runId}.hang`;
    await writeFile(hang, '');
    // The built-in trainer, unless the hang file exists: then one progress line and silence.
    const trainer = `if [ -e ${hang} ]; then echo '{"event":"start"}'; exec sleep 600; fi; exec ${localStack.repoRoot}/.venv/bin/python ${localStack.repoRoot}/python/trainer.py "$1"`;
    const config = {
      ...runConfig(runId, datasetPath, checkpoint, code, test, { stallMinutes: 0.75, maxAttempts: 2, command: ['bash', '-c', trainer, 'trainer'] }),
      iterations: 1,
      retries: { initialIntervalSeconds: 0.2, maximumIntervalSeconds: 0.5 },
    };
    const metrics = `127.0.0.1:${await freePort()}`;
    const worker = await startWorkers(metrics);
    try {
      const handle = await start(config);
      await until('the run to block', async () => Boolean((await handle.query(progressQuery)).blocked), 600_000);
      const { blocked } = await handle.query(progressQuery);
      assert.equal(blocked?.stage, 'updatePolicy');
      assert.equal(blocked?.attempts, 2);
      assert.equal(blocked?.errorType, 'TrainerStalledError');
      assert.match(blocked?.error ?? '', /^no trainer progress for 0\.75 min \(last: \{"event":"start"\}\); killed it$/);
      const attributes = (await handle.describe()).typedSearchAttributes;
      assert.equal(attributes.get(blockedAttribute), true);
      assert.equal(attributes.get(stageAttribute), 'updatePolicy');
      await assertBlockedSeen(runId, metrics, /Blocked: 0 iterations complete; blocked since .* in iteration 0, stage updatePolicy \(updatePolicy\) after 2 attempts: TrainerStalledError: no trainer progress/, 2);

      await rm(hang);
      await handle.executeUpdate(retryUpdate);
      const final = await handle.result();
      assert.equal(final.completedIterations, 1);
      assert.deepEqual(await scrape(metrics, 'code_a1_run_blocked', { run_id: runId }), [0]);
      const record = await getJson<IterationRecord>(store, keys.iterationRecord(runId, 0));
      assert.equal(record?.metrics['train.code.trained'], 1);
      assert.equal(record?.metrics['train.test.trained'], 1);
      const outputs = Object.values(stageOutputKeys(runId, 0));
      assertWrittenOnce(counter.writes(), `${bucket}/${keys.run(runId)}/`, outputs.map((key) => `${bucket}/${key}`));
    } finally {
      await rm(hang, { force: true });
      await stopWorkers(worker);
    }
  });

  it('with LoRA trains an adapter per role on one shared server, and samples the next iteration from both adapters', async () => {
    const runId = uniqueRunId('lora');
    const served = await realpath(resolveCheckpointRef(checkpoint, parseWorkerEnv(process.env).modelsDir));
    const shared = await startScriptedModelServer({ model: 'base', checkpoint: served, script: clampScript });
    const worker = await startWorkers();
    try {
      const progress = await (await start(runConfig(runId, datasetPath, checkpoint, shared, shared, { lora }, 'vllm'))).result();
      assert.equal(progress.completedIterations, 2);
    } finally {
      await stopWorkers(worker);
      await shared.close();
    }
    for (const iteration of [0, 1]) {
      const record = await getJson<IterationRecord>(store, keys.iterationRecord(runId, iteration));
      for (const role of ['code', 'test'] as const) {
        assert.equal(record?.metrics[`train.${role}.trained`], 1, `iteration ${iteration} trained ${role}`);
        const manifest = await getJson<{ adapter?: { model: string }; files: { path: string }[] }>(store, `${keys.checkpoint(runId, role, iteration)}/manifest.json`);
        assert.deepEqual(manifest?.adapter, { model: checkpoint }, 'an adapter on the run\'s initial model');
        assert.ok(!manifest.files.some((f) => f.path === 'model.safetensors'), 'no full weights are stored');
      }
    }
    assert.deepEqual(shared.loads, [], 'the base model is never reloaded');
    assert.deepEqual([...shared.adapterLoads].sort(), [`code-${runId}-it0`, `test-${runId}-it0`]);
    // Iteration 0 sampled from the base, iteration 1 from iteration 0's adapters.
    assert.deepEqual([...new Set(shared.requestedModels)].sort(), ['base', `code-${runId}-it0`, `test-${runId}-it0`]);
  });

  it('with trainer.devices 2 trains both roles on two ranks through torchrun, and serves their checkpoints', async () => {
    const runId = uniqueRunId('devices');
    const loaded = { code: code.loads.length, test: test.loads.length };
    const worker = await startWorkers();
    try {
      const progress = await (await start(runConfig(runId, datasetPath, checkpoint, code, test, { devices: 2 }))).result();
      assert.equal(progress.completedIterations, 2);
    } finally {
      await stopWorkers(worker);
    }
    for (const iteration of [0, 1]) {
      const record = await getJson<IterationRecord>(store, keys.iterationRecord(runId, iteration));
      for (const role of ['code', 'test'] as const) {
        assert.equal(record?.metrics[`train.${role}.trained`], 1, `iteration ${iteration} trained ${role}`);
        assert.equal(record?.metrics[`train.${role}.world_size`], 2, 'on two ranks');
        assert.ok(record.metrics[`train.${role}.grad_norm`]! > 0);
      }
    }
    // Iteration 1 sampled from iteration 0's checkpoint (before that, a server that still held an
    // earlier run's weights was given the initial ones).
    for (const [role, server] of [['code', code], ['test', test]] as const) {
      const trained = server.loads.slice(loaded[role]).filter((path) => /-attempt-\d+-[0-9a-f]+$/.test(path));
      assert.equal(trained.length, 1, `${role}: ${JSON.stringify(server.loads.slice(loaded[role]))}`);
    }
  });

  it('completes through an S3 outage, a trainer crash, a model server restart and a worker kill -9, with every artifact written once and the same Mistake Book', async () => {
    assert.ok(uninterrupted, 'the uninterrupted run of the same config ran first');
    const runId = uniqueRunId('faults');
    const codeLoads = code.loads.length;
    let worker = await startWorkers();
    const handle = await start(runConfig(runId, datasetPath, checkpoint, code, test));
    const faults: string[] = [];
    try {
      // S3 goes away in the middle of iteration 0, for longer than the SDK's own retries last.
      await until('iteration 0 to reach the sandbox', async () => ['execute', 'score', 'updateMistakeBook', 'updatePolicy'].includes((await stageOf(runId, 0)) ?? ''), 120_000);
      await stopS3(s3());
      await sleep(8_000);
      await startS3Server();
      faults.push('s3 outage');

      // The trainer dies with SIGKILL while it updates the Test LLM.
      let killed = 0;
      await until('the iteration 0 test trainer to start', async () => {
        for (const pid of await trainerPids(runId, 'test', 0)) {
          process.kill(pid, 'SIGKILL');
          killed += 1;
        }
        return killed > 0;
      }, 240_000);
      faults.push('trainer crash');

      // The code model server dies while answering iteration 1's first request and comes back
      // with its initial weights, after iteration 1 published iteration 0's checkpoint to it.
      code.crashOnNextCompletion();
      faults.push('model server restart');

      // The worker process is killed in iteration 1's policy update; another one takes over.
      await until('iteration 1 to train', async () => (await stageOf(runId, 1)) === 'updatePolicy', 300_000);
      await stopWorkers(worker);
      worker = await startWorkers();
      faults.push('worker kill -9');

      const progress = await handle.result();
      assert.equal(progress.completedIterations, 2);
    } finally {
      await stopWorkers(worker);
    }
    assert.deepEqual(faults, ['s3 outage', 'trainer crash', 'model server restart', 'worker kill -9']);

    // Counted where the writes landed: every stage's output of both iterations once, no key twice.
    const outputs = [0, 1].flatMap((i) => Object.values(stageOutputKeys(runId, i)));
    assertWrittenOnce(counter.writes(), `${bucket}/${keys.run(runId)}/`, outputs.map((key) => `${bucket}/${key}`));
    // One index per iteration; the rest are the shards those indexes name.
    const book = await written(runId, 'mistake-book/');
    assert.deepEqual(book.filter((k) => !k.includes('/shard-')), ['mistake-book/iter-0.json', 'mistake-book/iter-1.json']);
    assert.ok(book.every((k) => /^mistake-book\/iter-[01](\.json|\/shard-[0-9a-f]+\.json)$/.test(k)), book.join(', '));
    assert.deepEqual(await written(runId, 'iterations/'), ['iterations/00000000.json', 'iterations/00000001.json']);
    for (const role of ['code', 'test']) {
      // One finished checkpoint per iteration: one write-once manifest, naming files that are all
      // there. A crashed attempt may leave a partial folder beside it, which no manifest names.
      const files = await written(runId, `checkpoints/${role}/`);
      assert.deepEqual(
        files.filter((f) => f.endsWith('/manifest.json')),
        [0, 1].map((i) => `checkpoints/${role}/iter-${i}/manifest.json`),
      );
      for (const i of [0, 1]) {
        const prefix = keys.checkpoint(runId, role, i);
        const manifest = await getJson<{ dir: string; files: { path: string }[]; trained: boolean }>(store, `${prefix}/manifest.json`);
        assert.ok(manifest?.trained, `${role} iteration ${i} was trained`);
        // The crashed trainer's attempt wrote nothing that counts; the retry's checkpoint is the one.
        if (role === 'test' && i === 0) assert.doesNotMatch(manifest.dir, /^attempt-1-/);
        for (const f of manifest.files) assert.ok(files.includes(`checkpoints/${role}/iter-${i}/${manifest.dir}/${f.path}`), `${f.path} of ${prefix}`);
      }
    }
    assert.deepEqual(await finalBook(runId), uninterrupted.book, 'seeded sampling: the same final Mistake Book as the uninterrupted run');
    // The generation stage noticed the restarted server's other weights and published iteration
    // 0's checkpoint again before sampling: two loads of the same directory.
    assert.equal(code.crashes, 1);
    // (Iteration 0 first published the initial weights: the server still held the previous run's.)
    const loads = code.loads.slice(codeLoads).filter((path) => /-attempt-\d+-[0-9a-f]+$/.test(path));
    assert.equal(loads.length, 2, JSON.stringify(code.loads.slice(codeLoads)));
    assert.equal(loads[1], loads[0]);
  });
});
