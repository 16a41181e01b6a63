import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CancelledFailure } from '@temporalio/common';
import { createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { materialise, readManifest } from '../../../activities/trainer/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { openStore } from '../../../activities/storage/index.js';
import { keys } from '../../../workflows/contract.js';
import { cleanup, inActivity, tempDir, tinyUpdateInput, trainerConfig, writeCodeStage } from './helpers.js';

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
    let puts = 0;
    const failing = (uri: string): ObjectStore => {
      const real = openStore(uri);
      return Object.assign(Object.create(real) as ObjectStore, {
        putFile: async (key: string, path: string) => {
          if (++puts === 3) throw new Error('connection reset during upload');
          return real.putFile(key, path);
        },
      });
    };
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

  it('carries the base checkpoint and its optimizer state over when there is nothing to train on', async () => {
    const { store, input } = await tinyUpdateInput();
    const first = await inActivity(await activity(), input);
    const rollouts = [] as never[];
    const next = { ...input, iteration: 1, baseCheckpoint: first.checkpoint, ...(await writeCodeStage(store, 'run', 1, rollouts, [])) };
    const carried = await inActivity(await activity(), { ...next, trainer: trainerConfig({ command: ['false'] }) });
    assert.equal(carried.metrics.trained, 0);
    assert.equal(carried.metrics.steps, 1, 'the optimizer step count is carried');
    const [before, after] = await Promise.all([first.checkpoint, carried.checkpoint].map((c) => materialise(c, (uri) => openStore(uri), '/nonexistent')));
    for (const file of ['model.safetensors', 'optimizer.safetensors']) {
      assert.deepEqual(await readFile(join(after!.dir, file)), await readFile(join(before!.dir, file)));
    }
    await writeFile(join(after!.dir, 'unrelated'), ''); // the folder is an ordinary directory the server can read
  });
});
