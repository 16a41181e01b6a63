import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { loadPolicy, materialise, readManifest } from '../../../activities/trainer/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { StorageConfigError, openStore } from '../../../activities/storage/index.js';
import { withErrorClassification } from '../../../activities/errors.js';
import { keys } from '../../../workflows/contract.js';
import { failure } from '../../support/failure.js';
import { cleanup, codeRollout, inActivity, tempDir, tinyUpdateInput, trainerConfig, writeCodeStage } from './helpers.js';

after(cleanup);

const prefix = keys.checkpoint('run', 'code', 0);

async function activity(store?: (uri: string) => ObjectStore) {
  return createUpdatePolicyActivity({ openStore: store ?? ((uri) => openStore(uri)), workDir: await tempDir(), modelsDir: '/nonexistent' }).updatePolicy;
}

/** The stored checkpoint is whole: one manifest, and every file it lists is there with its hash. */
async function assertOneFinishedCheckpoint(store: ObjectStore) {
  const manifest = await readManifest(store, prefix);
  assert.ok(manifest, 'a manifest exists');
  for (const f of manifest.files) {
    const bytes = await store.get(`${prefix}/${manifest.dir}/${f.path}`);
    assert.ok(bytes, `${f.path} is stored`);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), f.sha256);
  }
  const stored = await store.list(`${prefix}/`);
  assert.deepEqual(stored.filter((k) => !k.startsWith(`${prefix}/${manifest.dir}/`)), [`${prefix}/manifest.json`], 'no files of other attempts remain');
  assert.ok(manifest.files.some((f) => f.path === 'model.safetensors') && manifest.files.some((f) => f.path === 'optimizer.safetensors'));
  return manifest;
}

/** A store whose `putFile` throws `error(key)` on the calls `fails` selects (numbered from 1). */
function storeFailingPuts(fails: (call: number) => boolean, error: (key: string) => Error) {
  let puts = 0;
  return (uri: string): ObjectStore => {
    const real = openStore(uri);
    return Object.assign(Object.create(real) as ObjectStore, {
      putFile: async (key: string, path: string) => {
        if (fails(++puts)) throw error(key);
        return real.putFile(key, path);
      },
    });
  };
}

describe('the updatePolicy activity', () => {
  it('returns a finished checkpoint without training again', async () => {
    const { store, input } = await tinyUpdateInput();
    const first = await inActivity(await activity(), input);
    // A trainer that would fail if started: the second call must not start it.
    const second = await inActivity(await activity(), { ...input, trainer: trainerConfig({ command: ['false'] }) });
    assert.deepEqual(second, first);
    assert.equal(first.checkpoint, `${store.uri}/${prefix}`);
    assert.equal(first.metrics.trained, 1);
    assert.equal(first.metrics.steps, 1);
    await assertOneFinishedCheckpoint(store);
  });

  it('after the trainer is killed mid-training, the retry produces exactly one finished checkpoint', async () => {
    const { store, input } = await tinyUpdateInput();
    const pidFile = join(await tempDir(), 'pid');
    // Records the trainer's pid (exec keeps it), so the test can kill it like an OOM killer would.
    const command = ['bash', '-c', `echo $$ > ${pidFile}; exec .venv/bin/python python/trainer.py "$1"`, 'trainer'];
    let killed = false;
    await assert.rejects(
      inActivity(await activity(), { ...input, trainer: trainerConfig({ command }) }, {
        onHeartbeat: async (details) => {
          if (killed || (details as { phase?: string }).phase !== 'train') return;
          killed = true;
          process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
        },
      }),
      { name: 'TrainerFailedError', message: /killed by SIGKILL/ },
    );
    assert.equal(await readManifest(store, prefix), undefined);
    const result = await inActivity(await activity(), input, { attempt: 2 });
    const manifest = await assertOneFinishedCheckpoint(store);
    assert.match(manifest.dir, /^attempt-2-/);
    assert.equal(result.metrics.steps, 1);
  });

  it('never uses a partial upload, and the retry replaces it with one finished checkpoint', async () => {
    const { store, input } = await tinyUpdateInput();
    const failing = storeFailingPuts((n) => n === 3, () => new Error('connection reset during upload'));
    await assert.rejects(inActivity(await activity(failing), input), /connection reset/);
    assert.ok((await store.list(`${prefix}/attempt-1-`)).length >= 2, 'the first attempt left files behind');
    await assert.rejects(materialise(`${store.uri}/${prefix}`, (uri) => openStore(uri), await tempDir()), { name: 'MissingArtifactError' });

    await inActivity(await activity(), input, { attempt: 2 });
    const manifest = await assertOneFinishedCheckpoint(store);
    const local = await materialise(`${store.uri}/${prefix}`, (uri) => openStore(uri), await tempDir());
    assert.ok(local.dir.endsWith(manifest.dir));
  });

  it('kills the trainer and everything it started when the activity is cancelled', async () => {
    const { input } = await tinyUpdateInput();
    const pids = join(await tempDir(), 'pids');
    const command = ['bash', '-c', `sleep 300 & echo "$$ $!" > ${pids}; echo '{"event":"start"}'; wait`, 'trainer'];
    const run = inActivity(await activity(), { ...input, trainer: trainerConfig({ command }) }, {
      onHeartbeat: (details, env) => {
        if ((details as { event?: string }).event === 'start') env.cancel();
      },
    });
    await assert.rejects(run, (err) => err instanceof CancelledFailure);
    const [trainer, grandchild] = (await readFile(pids, 'utf8')).trim().split(' ').map(Number);
    for (const pid of [trainer!, grandchild!]) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`);
  });

  it('fails without retry when the trainer rejects its job or breaks the contract', async () => {
    const { input } = await tinyUpdateInput();
    await assert.rejects(inActivity(await activity(), { ...input, trainer: trainerConfig({ command: ['bash', '-c', 'exit 65', 'trainer'] }) }), {
      name: 'ConfigError',
      message: /rejected its job/,
    });
    await assert.rejects(inActivity(await activity(), { ...input, trainer: trainerConfig({ command: ['true'] }) }), {
      name: 'ConfigError',
      message: /without writing config.json and metrics.json/,
    });
  });

  it('retries a failed upload by uploading again, without training a second time', async () => {
    const { store, input } = await tinyUpdateInput();
    const scratch = await tempDir();
    const runs = join(scratch, 'trainer-runs');
    const command = ['bash', '-c', `echo run >> ${runs}; exec .venv/bin/python python/trainer.py "$1"`, 'trainer'];
    const failingOnce = storeFailingPuts((n) => n === 1, () => new Error('connection reset during upload'));
    const sameWorker = (store: (uri: string) => ObjectStore) =>
      createUpdatePolicyActivity({ openStore: store, workDir: scratch, modelsDir: '/nonexistent' }).updatePolicy;
    const trainer = trainerConfig({ command });
    await assert.rejects(inActivity(sameWorker(failingOnce), { ...input, trainer }), /connection reset/);
    const result = await inActivity(sameWorker(failingOnce), { ...input, trainer }, { attempt: 2 });
    assert.equal((await readFile(runs, 'utf8')).trim().split('\n').length, 1, 'the trainer ran once');
    assert.equal(result.metrics.reusedTrainerOutput, 1);
    assert.equal(result.metrics.steps, 1);
    await assertOneFinishedCheckpoint(store);
    assert.deepEqual(await readdir(scratch).then((d) => d.filter((e) => e !== 'trainer-runs' && e !== 'checkpoints')), ['update-policy']);
    assert.deepEqual(await readdir(join(scratch, 'update-policy', 'run', 'code')), [], 'the finished output is removed once the checkpoint is stored');
  });

  it('fails without retry when the store refuses the checkpoint for good, naming the object', async () => {
    const { input } = await tinyUpdateInput();
    const refusing = storeFailingPuts(() => true, (key) => new StorageConfigError(`put ${key}: EntityTooLarge`));
    const err = await failure(inActivity(withErrorClassification({ updatePolicy: await activity(refusing) }).updatePolicy, input));
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable, String(err));
    assert.equal(err.type, 'StorageConfigError');
    assert.match(err.message, /checkpoints\/code\/iter-0\/attempt-1-[^/]+\/\S+: EntityTooLarge/);
  });

  it('with LoRA stores an adapter on the base model and continues it in the next iteration', async () => {
    const lora = { rank: 4, alpha: 8, dropout: 0, targetModules: ['q_proj', 'v_proj'] };
    const { store, input } = await tinyUpdateInput({ trainer: trainerConfig({ lora }) });
    const first = await inActivity(await activity(), input);
    const manifest = await readManifest(store, prefix);
    assert.deepEqual(manifest?.adapter, { model: input.baseCheckpoint });
    const stored = manifest!.files.map((f) => f.path);
    for (const file of ['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors', 'metrics.json']) assert.ok(stored.includes(file), `${file} is stored`);
    assert.ok(!stored.includes('model.safetensors'), 'no full weights are stored');

    const rollouts = [codeRollout('q2', 0, [1, 40, 41], [70, 71, 2], first.checkpoint), codeRollout('q2', 1, [1, 40, 41], [90, 91, 2], first.checkpoint)];
    const next = { ...input, iteration: 1, baseCheckpoint: first.checkpoint, ...(await writeCodeStage(store, 'run', 1, rollouts, [1, -1])) };
    const second = await inActivity(await activity(), next);
    assert.equal(second.metrics.steps, 2, 'the adapter and its optimizer continue from the first iteration');
    const options = { openStore: (uri: string) => openStore(uri), modelsDir: '/nonexistent', cacheDir: '/nonexistent' };
    const policy = await loadPolicy(second.checkpoint, options);
    assert.equal(policy.adapterOf?.checkpoint, input.baseCheckpoint);

    await assert.rejects(inActivity(await activity(), { ...next, iteration: 2, referenceCheckpoint: first.checkpoint }), {
      name: 'ConfigError',
      message: /reference .* must be/,
    });
  });

  it('makes the checkpoint an alias of the base, copying no files, when there is nothing to train on', async () => {
    const { store, input } = await tinyUpdateInput();
    const first = await inActivity(await activity(), input);
    const rollouts = [] as never[];
    const next = { ...input, iteration: 1, baseCheckpoint: first.checkpoint, ...(await writeCodeStage(store, 'run', 1, rollouts, [])) };
    const carried = await inActivity(await activity(), { ...next, trainer: trainerConfig({ command: ['false'] }) });
    assert.equal(carried.metrics.trained, 0);
    assert.equal(carried.metrics.steps, 1, 'the optimizer step count is carried');
    const manifest = await readManifest(store, keys.checkpoint('run', 'code', 1));
    assert.equal(manifest?.alias, first.checkpoint);
    assert.deepEqual(await store.list(`${keys.checkpoint('run', 'code', 1)}/`), [`${keys.checkpoint('run', 'code', 1)}/manifest.json`]);
    const options = { openStore: (uri: string) => openStore(uri), modelsDir: '/nonexistent', cacheDir: '/nonexistent' };
    const [before, after] = await Promise.all([first.checkpoint, carried.checkpoint].map((c) => loadPolicy(c, options)));
    assert.equal(after!.checkpoint, first.checkpoint, 'the alias resolves to the trained checkpoint');
    assert.equal(after!.dir, before!.dir);

    // An alias of an alias points at the trained checkpoint, not at the alias.
    const third = { ...next, iteration: 2, baseCheckpoint: carried.checkpoint, ...(await writeCodeStage(store, 'run', 2, rollouts, [])) };
    await inActivity(await activity(), { ...third, trainer: trainerConfig({ command: ['false'] }) });
    assert.equal((await readManifest(store, keys.checkpoint('run', 'code', 2)))?.alias, first.checkpoint);
  });
});
