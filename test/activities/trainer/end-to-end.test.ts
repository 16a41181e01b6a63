import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createPublishPolicyActivity } from '../../../activities/publish-policy.js';
import { createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { openStore } from '../../../activities/storage/index.js';
import { modelEndpointSchema } from '../../../config/run-config.js';
import { startModelServer } from '../../../infra/model-server.js';
import { cleanup, codeRollout, fileStore, inActivity, onCleanup, tempDir, tinyModel, trainerConfig, writeCodeStage } from './helpers.js';

after(cleanup);

interface Completion {
  prompt_token_ids: number[];
  choices: { token_ids: number[] }[];
}

describe('a policy update end to end', () => {
  it('trains on sampled rollouts, stores the checkpoint, and the reloaded server samples differently', async () => {
    const base = await tinyModel();
    const server = await startModelServer({ checkpoint: base, model: 'tiny', threads: 1 });
    onCleanup(() => server.stop());
    const sample = async (): Promise<Completion> => {
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Write a Python function.' }], n: 4, max_tokens: 12, seed: 7, temperature: 1 }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as Completion;
    };

    // Rollouts exactly as sampled, in a file:// store, with advantages from a scores record.
    const before = await sample();
    const { store, uri } = await fileStore();
    const rollouts = before.choices.map((c, i) => codeRollout('q1', i, before.prompt_token_ids, c.token_ids, base));
    const stage = await writeCodeStage(store, 'e2e', 0, rollouts, [1, -1, 0.5, -0.5]);
    const workDir = await tempDir();
    const ref = { runId: 'e2e', iteration: 0, storageUri: uri };
    const updated = await inActivity(createUpdatePolicyActivity({ openStore: (u) => openStore(u), workDir, modelsDir: workDir }).updatePolicy, {
      ...ref,
      role: 'code',
      ...stage,
      baseCheckpoint: base,
      referenceCheckpoint: base,
      trainer: trainerConfig(),
    });
    assert.equal(updated.checkpoint, `${uri}/runs/e2e/checkpoints/code/iter-0`);
    assert.equal(updated.metrics.rollouts, 4);
    assert.equal(updated.metrics.ratio_mean, 1, 'one epoch from the sampling policy: every ratio starts at 1');

    const { publishPolicy } = createPublishPolicyActivity({ openStore: (u) => openStore(u), workDir, modelsDir: workDir });
    const model = modelEndpointSchema.parse({ baseUrl: server.baseUrl, model: 'tiny', checkpoint: base });
    const version = async () => ((await (await fetch(server.baseUrl.replace(/\/v1$/, '/health'))).json()) as { checkpoint_version: number }).checkpoint_version;
    await inActivity(publishPolicy, { ...ref, role: 'code', model, checkpoint: updated.checkpoint });
    assert.equal(await version(), 2);
    const afterUpdate = await sample();
    assert.deepEqual(afterUpdate.prompt_token_ids, before.prompt_token_ids);
    assert.notDeepEqual(afterUpdate.choices.map((c) => c.token_ids), before.choices.map((c) => c.token_ids));

    // Publishing what the server already serves does not reload it.
    await inActivity(publishPolicy, { ...ref, role: 'code', model, checkpoint: updated.checkpoint });
    assert.equal(await version(), 2);

    // A checkpoint the server cannot load is a configuration error, not an outage to retry.
    const broken = join(await tempDir(), 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'config.json'), '{"model_type": "llama"}');
    await assert.rejects(inActivity(publishPolicy, { ...ref, role: 'code', model, checkpoint: broken }), { name: 'ModelConfigError', message: /400/ });
    assert.equal(await version(), 2, 'the updated checkpoint keeps serving');
  });

  it('with LoRA publishes each adapter beside the base under a versioned name, and samples from it by that name', async () => {
    const base = await tinyModel();
    const server = await startModelServer({ checkpoint: base, model: 'tiny', threads: 1 });
    onCleanup(() => server.stop());
    const sample = async (model: string): Promise<Completion> => {
      const res = await fetch(`${server.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Write a Python function.' }], n: 4, max_tokens: 12, seed: 7, temperature: 1 }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()) as Completion;
    };
    const served = async () => ((await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { id: string; parent?: string }[] }).data;

    const { store, uri } = await fileStore();
    const workDir = await tempDir();
    const deps = { openStore: (u: string) => openStore(u), workDir, modelsDir: workDir };
    const { updatePolicy } = createUpdatePolicyActivity(deps);
    const { publishPolicy } = createPublishPolicyActivity(deps);
    const model = modelEndpointSchema.parse({ baseUrl: server.baseUrl, model: 'tiny', checkpoint: base });
    const trainer = trainerConfig({ lora: { rank: 4, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });

    let checkpoint = base;
    const fromBase = await sample('tiny');
    for (const iteration of [0, 1]) {
      const drawn = await sample(iteration === 0 ? 'tiny' : `code-e2e-lora-it${iteration - 1}`);
      const rollouts = drawn.choices.map((c, i) => codeRollout('q1', i, drawn.prompt_token_ids, c.token_ids, checkpoint));
      const stage = await writeCodeStage(store, 'e2e-lora', iteration, rollouts, [1, -1, 0.5, -0.5]);
      const ref = { runId: 'e2e-lora', iteration, storageUri: uri };
      const updated = await inActivity(updatePolicy, { ...ref, role: 'code', ...stage, baseCheckpoint: checkpoint, referenceCheckpoint: base, trainer });
      assert.equal(updated.metrics.steps, iteration + 1);
      checkpoint = updated.checkpoint;
      await inActivity(publishPolicy, { ...ref, role: 'code', model, checkpoint });
      // The new version is served beside the base; the previous version of this role is unloaded.
      assert.deepEqual(
        (await served()).map((m) => [m.id, m.parent ?? null]),
        [['tiny', null], [`code-e2e-lora-it${iteration}`, 'tiny']],
      );
    }
    const adapted = await sample('code-e2e-lora-it1');
    assert.deepEqual(adapted.prompt_token_ids, fromBase.prompt_token_ids);
    assert.notDeepEqual(adapted.choices.map((c) => c.token_ids), fromBase.choices.map((c) => c.token_ids), 'the adapter changes what is sampled');
    assert.deepEqual((await sample('tiny')).choices.map((c) => c.token_ids), fromBase.choices.map((c) => c.token_ids), 'the base is served unchanged');
  });

  it('treats an unreachable endpoint as retryable', async () => {
    const { publishPolicy } = createPublishPolicyActivity({ openStore: (u) => openStore(u), workDir: await tempDir(), modelsDir: '/nonexistent' });
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    probe.close();
    const model = modelEndpointSchema.parse({ baseUrl: `http://127.0.0.1:${port}/v1`, model: 'tiny', checkpoint: await tinyModel() });
    await assert.rejects(
      inActivity(publishPolicy, { runId: 'e2e', iteration: 0, storageUri: 'file:///nonexistent', role: 'code', model, checkpoint: await tinyModel() }),
      { name: 'ModelServerError', message: /GET http:\/\/127\.0\.0\.1:\d+\/v1\/models failed/ },
    );
  });
});
