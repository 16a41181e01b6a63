import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { CancelledFailure } from '@temporalio/common';
import { builtinTrainer, builtinTrainerCommand, createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { readManifest } from '../../../activities/trainer/index.js';
import { openStore } from '../../../activities/storage/index.js';
import { keys } from '../../../workflows/contract.js';
import { cleanup, inActivity, tempDir, tinyUpdateInput, trainerConfig } from './helpers.js';

after(cleanup);

const prefix = keys.checkpoint('run', 'code', 0);
/** python/trainer.py FAULT_RANK: the rank it names fails at its first training pass. */
const FAULT_RANK = 'CODE_A1_TRAINER_FAULT_RANK';

async function activity(workDir: string) {
  return createUpdatePolicyActivity({ openStore: (uri) => openStore(uri), workDir, modelsDir: '/nonexistent' }).updatePolicy;
}

/**
 * Processes whose command line names `dir` (the trainer's job file lives there), once those still
 * dying are gone: a rank killed with torchrun (PR_SET_PDEATHSIG) exits a moment after it.
 */
async function processesUnder(dir: string): Promise<number[]> {
  const list = async () => (await execa('pgrep', ['-f', dir], { reject: false })).stdout.split('\n').filter(Boolean).map(Number);
  for (let i = 0; i < 100 && (await list()).length > 0; i++) await sleep(100);
  return list();
}

describe('the policy update on several devices', () => {
  it('runs the built-in trainer under torchrun beyond one device, and as one process otherwise', () => {
    assert.deepEqual(builtinTrainer(1), builtinTrainerCommand);
    const [python, launcher, ...args] = builtinTrainer(4);
    assert.equal(python, builtinTrainerCommand[0]);
    assert.match(launcher!, /python\/torchrun\.py$/);
    assert.deepEqual(args, ['--standalone', '--nproc_per_node=4', builtinTrainerCommand[1]]);
  });

  it('with trainer.devices 2 trains on two ranks and stores the update one process makes', async () => {
    const one = await tinyUpdateInput();
    const two = await tinyUpdateInput({ trainer: trainerConfig({ devices: 2 }) });
    const [a, b] = [await inActivity(await activity(await tempDir()), one.input), await inActivity(await activity(await tempDir()), two.input)];
    assert.equal(a.metrics.world_size, 1);
    assert.equal(b.metrics.world_size, 2);
    for (const key of ['loss', 'pg_loss', 'kl', 'ratio_mean', 'grad_norm', 'steps', 'response_tokens']) {
      assert.ok(Math.abs(a.metrics[key]! - b.metrics[key]!) <= 1e-5 * Math.abs(a.metrics[key]!) + 1e-9, `${key}: ${a.metrics[key]} and ${b.metrics[key]}`);
    }
    const manifest = await readManifest(two.store, prefix);
    assert.ok(manifest?.files.some((f) => f.path === 'model.safetensors'));
  });

  it('fails retryably when a rank crashes, stores nothing, and the retry trains from the same base', async () => {
    const { store, input } = await tinyUpdateInput({ trainer: trainerConfig({ devices: 2 }) });
    const workDir = await tempDir();
    process.env[FAULT_RANK] = '1';
    try {
      await assert.rejects(inActivity(await activity(workDir), input), { name: 'TrainerFailedError', message: /exited with status 1/ });
    } finally {
      delete process.env[FAULT_RANK];
    }
    assert.equal(await readManifest(store, prefix), undefined);
    assert.deepEqual(await processesUnder(workDir), [], 'no rank outlives the failure');
    const retried = await inActivity(await activity(workDir), input, { attempt: 2 });
    assert.equal(retried.metrics.steps, 1);
    assert.equal(retried.metrics.world_size, 2);
  });

  it('kills torchrun and every rank when the activity is cancelled', async () => {
    const { input } = await tinyUpdateInput({ trainer: trainerConfig({ devices: 2 }) });
    const workDir = await tempDir();
    const run = inActivity(await activity(workDir), input, {
      onHeartbeat: (details, env) => {
        if ((details as { phase?: string; event?: string }).event === 'start') env.cancel();
      },
    });
    await assert.rejects(run, (err) => err instanceof CancelledFailure);
    assert.deepEqual(await processesUnder(workDir), [], 'torchrun and both ranks are gone');
  });
});
