import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { readManifest } from '../../../activities/trainer/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { openStore } from '../../../activities/storage/index.js';
import { withErrorClassification } from '../../../activities/errors.js';
import type { RunConfig } from '../../../config/run-config.js';
import type { UpdatePolicyInput } from '../../../workflows/contract.js';
import { keys } from '../../../workflows/contract.js';
import type { updatePolicyOnce } from '../../support/gpu-update-workflow.js';
import type { Child } from '../../support/processes.js';
import { killHard, startScript, until } from '../../support/processes.js';
import { testS3Connection, testS3Store } from '../../support/s3.js';
import { connectClient, temporalAddress, testNamespace } from '../../support/temporal.js';
import { failure } from '../../support/failure.js';
import { cleanup, codeRollout, inActivity, onCleanup, python, tempDir, tinyModel, tinyUpdateInput, trainerConfig, writeCodeStage } from './helpers.js';

after(cleanup);

const prefix = keys.checkpoint('run', 'code', 0);

/**
 * A trainer command that appends a line to `runs` each time it starts, then runs `script` (bash)
 * with the job file as $1: the count of trainer runs, wherever they happen.
 */
function countedTrainer(runs: string, script: string): string[] {
  return ['bash', '-c', `echo run >> ${runs}; ${script}`, 'trainer'];
}

const builtin = `exec ${python} python/trainer.py "$1"`;

async function trainerRuns(runs: string): Promise<number> {
  return (await readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/** The stored checkpoint is whole: a manifest, every file it lists with its hash, and nothing else under the prefix. */
async function assertWholeCheckpoint(store: ObjectStore) {
  const manifest = await readManifest(store, prefix);
  assert.ok(manifest, 'a manifest exists');
  for (const f of manifest.files) {
    const bytes = await store.get(`${prefix}/${manifest.dir}/${f.path}`);
    assert.ok(bytes, `${f.path} is stored`);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), f.sha256, `${f.path} matches its hash`);
  }
  const others = (await store.list(`${prefix}/`)).filter((k) => !k.startsWith(`${prefix}/${manifest.dir}/`));
  assert.deepEqual(others, [`${prefix}/manifest.json`], 'no trained marker and no other attempt remains');
  assert.ok(manifest.files.some((f) => f.path === 'model.safetensors'));
  return manifest;
}

describe('the trainer launcher', () => {
  // Each stand-in trainer writes its pid to $1's sibling `pid` file first ($PID_FILE below).
  const cases = [
    {
      what: 'kills a trainer that prints one progress line and then hangs, naming that line',
      script: `echo '{"event":"start"}'; exec sleep 600`,
      expect: { type: 'TrainerStalledError', retried: true, message: /^no trainer progress for 0\.03 min \(last: \{"event":"start"\}\); killed it$/ },
    },
    {
      what: 'counts a line repeated without change but for its clock (a keep-alive) as no progress',
      script: `while true; do echo '{"event":"alive","seconds":'$SECONDS'}'; sleep 0.1; done`,
      expect: { type: 'TrainerStalledError', retried: true, message: /last: \{"event":"alive","seconds":0\}/ },
    },
    {
      what: 'lets a trainer run past stallMinutes while its lines advance',
      script: `for i in $(seq 1 25); do echo '{"event":"progress","done":'$i',"total":25}'; sleep 0.2; done`,
      // Exit 0 without a checkpoint: the launcher waited for the end instead of killing it.
      expect: { type: 'ConfigError', retried: false, message: /exited with status 0 without writing/ },
    },
  ];
  for (const c of cases) {
    it(`${c.what} (stallMinutes 0.03)`, async () => {
      const { input } = await tinyUpdateInput();
      const pidFile = join(await tempDir(), 'pid');
      const updatePolicy = createUpdatePolicyActivity({ openStore: (uri) => openStore(uri), workDir: await tempDir(), modelsDir: '/nonexistent' }).updatePolicy;
      const trainer = trainerConfig({ stallMinutes: 0.03, command: ['bash', '-c', `echo $$ > ${pidFile}; ${c.script}`, 'trainer'] });
      const err = await failure(inActivity(withErrorClassification({ updatePolicy }).updatePolicy, { ...input, trainer }));
      assert.ok(err instanceof Error, String(err));
      assert.equal(err instanceof ApplicationFailure ? err.type : err.name, c.expect.type, err.message);
      assert.match(err.message, c.expect.message);
      assert.equal(!(err instanceof ApplicationFailure && err.nonRetryable), c.expect.retried);
      assert.ok(gone(Number(await readFile(pidFile, 'utf8'))), 'the trainer is gone');
    });
  }
});

describe('updatePolicy on a GPU task queue of worker processes (Temporal dev server)', () => {
  let client: Client;
  let closeClient: () => Promise<void>;
  let connection: NativeConnection;
  let workflowQueue: string;
  let stopWorkflows: () => Promise<void>;

  before(async () => {
    ({ client, close: closeClient } = await connectClient());
    connection = await NativeConnection.connect({ address: temporalAddress });
    workflowQueue = `gpu-retry-workflows-${randomUUID().slice(0, 8)}`;
    const workflowsPath = new URL('../../support/gpu-update-workflow.ts', import.meta.url).pathname;
    const worker = await Worker.create({
      connection,
      namespace: testNamespace,
      taskQueue: workflowQueue,
      workflowBundle: await bundleWorkflowCode({ workflowsPath, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } }),
    });
    const running = worker.run();
    stopWorkflows = async () => {
      worker.shutdown();
      await running;
    };
  });

  after(async () => {
    await stopWorkflows?.();
    await connection?.close();
    await closeClient?.();
  });

  /** Starts a gpu worker process serving `queue`, stopped after the tests; its output accumulates in `output()`. */
  async function gpuWorker(queue: string, workDir: string, ...flags: string[]): Promise<{ child: Child; output: () => string }> {
    const env = { TEMPORAL_ADDRESS: temporalAddress, CODE_A1_GPU_WORKER_S3: JSON.stringify(testS3Connection()) };
    const child = await startScript('test/support/gpu-worker.ts', [testNamespace, queue, workDir, ...flags], env);
    let output = child.readyOutput ?? '';
    child.process.all!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    onCleanup(() => killHard(child));
    return { child, output: () => output };
  }

  function start(update: UpdatePolicyInput, taskQueue: string, maximumAttempts: number) {
    return client.workflow.start<typeof updatePolicyOnce>('updatePolicyOnce', {
      taskQueue: workflowQueue,
      workflowId: `gpu-retry-${randomUUID()}`,
      args: [{ update, taskQueue, heartbeatSeconds: 10, maximumAttempts }],
    });
  }

  it("is finished by a retry on another worker from the stored trainer output, when the first worker is killed -9 before the manifest", async () => {
    const store = testS3Store();
    const base = await tinyModel();
    const rollouts = [codeRollout('q1', 0, [1, 40, 41, 42], [60, 61, 62, 2], base), codeRollout('q1', 1, [1, 40, 41, 42], [80, 81, 82, 2], base)];
    const runs = join(await tempDir(), 'trainer-runs');
    const update: UpdatePolicyInput = {
      runId: 'run',
      iteration: 0,
      storageUri: store.uri,
      role: 'code',
      ...(await writeCodeStage(store, 'run', 0, rollouts, [1, -1])),
      baseCheckpoint: base,
      referenceCheckpoint: base,
      trainer: trainerConfig({ command: countedTrainer(runs, builtin) }),
    };
    const queue = `gpu-retry-${randomUUID().slice(0, 8)}`;
    const first = await gpuWorker(queue, await tempDir(), '--hold-manifest');
    const handle = await start(update, queue, 3);
    // The attempt must not end any other way: a failure would otherwise show as a wait that times out.
    const ended = handle.result().then(
      () => assert.fail('the update finished on the first worker'),
      (err: unknown) => assert.fail(`the update failed on the first worker: ${String(err)}\n${first.output()}`),
    );
    await Promise.race([ended, until('the first worker to hold the manifest write', async () => first.output().includes('holding'), 10 * 60_000)]);
    ended.catch(() => {});
    await killHard(first.child);
    const stored = await store.list(`${prefix}/`);
    assert.ok(stored.some((k) => /\/trained-[0-9a-f]+\.json$/.test(k)), `the trained output is marked as stored before the manifest: ${stored.join(', ')}`);
    assert.ok(!stored.includes(`${prefix}/manifest.json`));

    const secondDir = await tempDir();
    await gpuWorker(queue, secondDir);
    const result = await handle.result();
    assert.equal(await trainerRuns(runs), 1, 'the trainer ran once in all');
    assert.equal(result.metrics.reusedTrainerOutput, 1);
    assert.equal(result.metrics.trained, 1);
    assert.equal(result.metrics.steps, 1);
    const manifest = await assertWholeCheckpoint(store);
    assert.match(manifest.dir, /^attempt-1-/, "the first worker's upload is the checkpoint");
    await assert.rejects(access(join(secondDir, 'update-policy')), { code: 'ENOENT' }, 'the second worker prepared no trainer job');
  });

  const failures: {
    what: string;
    script: string;
    /** Trainer settings beyond the command, also ones the run config's schema would refuse (as a config from elsewhere could carry). */
    trainer?: Record<string, unknown>;
    attempts: number;
    runs: number;
    expect: { type: string; nonRetryable: boolean; message: RegExp };
  }[] = [
    {
      what: 'retries a stalled trainer within its attempts, then fails with TrainerStalledError',
      script: `echo '{"event":"start"}'; exec sleep 600`,
      trainer: { stallMinutes: 0.03 },
      attempts: 2,
      runs: 2,
      expect: { type: 'TrainerStalledError', nonRetryable: false, message: /no trainer progress for 0\.03 min \(last: \{"event":"start"\}\)/ },
    },
    {
      what: 'fails at once, without retry, when the trainer runs out of GPU memory, with its message',
      script: `echo '{"event":"start"}'; echo 'Traceback (most recent call last):' >&2; echo 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.10 GiB of which 1.25 GiB is free.' >&2; echo 'torchrun: a rank failed' >&2; exit 1`,
      attempts: 3,
      runs: 1,
      expect: { type: 'TrainerOutOfMemoryError', nonRetryable: true, message: /ran out of GPU memory.*torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate 2\.00 GiB/ },
    },
    {
      what: 'fails at once, without retry, when the built-in trainer rejects its config, with its message',
      script: builtin,
      trainer: { learningRat: 1e-3 },
      attempts: 3,
      runs: 1,
      expect: { type: 'ConfigError', nonRetryable: true, message: /rejected its job \(exit status 65\):.*unknown trainer config keys: learning_rat/s },
    },
  ];
  for (const f of failures) {
    it(f.what, async () => {
      const { input } = await tinyUpdateInput();
      const runs = join(await tempDir(), 'trainer-runs');
      const queue = `gpu-fail-${randomUUID().slice(0, 8)}`;
      await gpuWorker(queue, await tempDir());
      const trainer = { ...trainerConfig({ command: countedTrainer(runs, f.script) }), ...f.trainer } as RunConfig['trainer'];
      const update = { ...input, trainer };
      const err = await failure((await start(update, queue, f.attempts)).result());
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure, String(err));
      const cause = err.cause.cause;
      assert.ok(cause instanceof ApplicationFailure, String(cause));
      assert.equal(cause.type, f.expect.type, cause.message);
      assert.equal(cause.nonRetryable, f.expect.nonRetryable);
      assert.match(cause.message, f.expect.message);
      assert.equal(await trainerRuns(runs), f.runs, 'trainer runs');
    });
  }
});
