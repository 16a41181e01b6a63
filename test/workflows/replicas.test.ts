import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { codeA1Iteration } from '../../workflows/iteration.js';
import { publishTaskQueue, taskQueues } from '../../workflows/contract.js';
import type { GenerateCodeInput, PublishPolicyInput } from '../../workflows/contract.js';
import { createPublishPolicyActivity } from '../../activities/publish-policy.js';
import { createUpdatePolicyActivity } from '../../activities/update-policy.js';
import { verifyServed } from '../../activities/llm/index.js';
import { openStore } from '../../activities/storage/index.js';
import { startModelServer } from '../../infra/model-server.js';
import type { ModelServer } from '../../infra/model-server.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { testConfig } from '../support/config.js';
import { readJournal } from '../support/journal.js';
import { recordingStages } from '../support/recording-stages.js';
import { cleanup, codeRollout, inActivity, onCleanup, tempDir, tinyModel, trainerConfig, writeCodeStage } from '../activities/trainer/helpers.js';

after(cleanup);

/**
 * A role served by two replicas on two hosts, each with its publish worker (task queue
 * code-a1-publish-<host>, its own disk): the iteration publishes to both before it samples, and a
 * replica that restarts between publishing and sampling is found by the generation stage's check
 * and published to again. Real embedded servers speaking vLLM's routes; the other stages are
 * stand-ins.
 */
describe('codeA1Iteration with replicas on two serving hosts', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  it('publishes to every replica before sampling and republishes a replica that restarted', async () => {
    const base = await tinyModel();
    const dir = await tempDir();
    const storageUri = `file://${dir}/store`;

    // A trained checkpoint (with its probe) for the iteration to start from.
    const trainDir = await tempDir();
    const { updatePolicy } = createUpdatePolicyActivity({ openStore: (u) => openStore(u), workDir: trainDir, modelsDir: trainDir });
    const rollouts = [3, 4, 5, 6].map((t, i) => codeRollout('q1', i, [1, 5, 9, 12], [t, t + 1, t + 2, 2], base));
    const stage = await writeCodeStage(openStore(storageUri), 'replicas-src', 0, rollouts, [1, -1, 0.5, -0.5]);
    const trained = await inActivity(updatePolicy, {
      runId: 'replicas-src',
      iteration: 0,
      storageUri,
      role: 'code',
      ...stage,
      baseCheckpoint: base,
      referenceCheckpoint: base,
      trainer: trainerConfig(),
    });

    const servers: Record<'a' | 'b', ModelServer> = {
      a: await startModelServer({ checkpoint: base, model: 'tiny', threads: 1 }),
      b: await startModelServer({ checkpoint: base, model: 'tiny', threads: 1 }),
    };
    onCleanup(() => Promise.all(Object.values(servers).map((s) => s.stop())));
    const version = async (s: ModelServer) => ((await (await fetch(s.baseUrl.replace(/\/v1$/, '/health'))).json()) as { checkpoint_version: number }).checkpoint_version;

    const config = testConfig(`${dir}/store`, {
      models: {
        code: { server: 'vllm', baseUrl: servers.a.baseUrl, host: 'host-a', replicas: [{ baseUrl: servers.b.baseUrl, host: 'host-b' }], model: 'tiny', checkpoint: base },
        test: { baseUrl: 'http://127.0.0.1:1/v1', model: 'test', checkpoint: 'init/test' },
      },
      // Restarting a server inside the stage takes seconds without a heartbeat.
      timeouts: { heartbeatSeconds: 120 },
    });
    const journal = `${dir}/journal`;
    const note = (what: string) => appendFile(journal, `call ${config.runId} 1 ${what}\n`);
    const stages = recordingStages({ journal, gateDir: dir });

    // Each host's publish worker has a disk of its own.
    const publishOn = async (host: string) => {
      const workDir = await tempDir();
      const { publishPolicy } = createPublishPolicyActivity({ openStore: (u) => openStore(u), workDir, modelsDir: workDir });
      return {
        publishPolicy: async (input: PublishPolicyInput) => {
          await note(`publish-${input.role}-${host}-replica${input.replica ?? 0}`);
          await publishPolicy(input);
        },
      };
    };

    // The generation stage's check of remote replicas, as the llm worker runs it; before its first
    // attempt, replica b restarts and comes back with its initial weights.
    let attempts = 0;
    const generateCode = async (input: GenerateCodeInput) => {
      await note('generateCode');
      if (attempts++ === 0) {
        const port = Number(new URL(servers.b.baseUrl).port);
        await servers.b.stop();
        servers.b = await startModelServer({ checkpoint: base, model: 'tiny', threads: 1, port });
      }
      const deps = { openStore: (u: string) => openStore(u), workDir: await tempDir(), modelsDir: '/nonexistent' };
      for (const replica of [0, 1]) await verifyServed(deps, input.model, input.checkpoint, replica);
      return stages.generateCode(input);
    };

    const previous = { runId: config.runId, iteration: 0, mistakeBookKey: 'none', checkpoints: { code: trained.checkpoint, test: 'init/test' }, metrics: {} };
    await withWorker(
      { ...stages, generateCode },
      () =>
        client.workflow.execute(codeA1Iteration, {
          taskQueue: taskQueues.orchestration,
          workflowId: `${config.runId}/iter-1-${randomUUID()}`,
          args: [{ config, iteration: 1, previous }],
        }),
      undefined,
      { [publishTaskQueue('host-a')]: await publishOn('host-a'), [publishTaskQueue('host-b')]: await publishOn('host-b') },
    );

    const calls = (await readJournal(journal)).filter((e) => e.kind === 'call' && e.iteration === 1).map((e) => e.stage);
    const firstGeneration = calls.indexOf('generateCode');
    assert.deepEqual(new Set(calls.slice(0, firstGeneration).filter((c) => c.startsWith('publish-code'))), new Set(['publish-code-host-a-replica0', 'publish-code-host-b-replica1']));
    const afterFirst = calls.slice(firstGeneration + 1);
    const secondGeneration = afterFirst.indexOf('generateCode');
    assert.ok(secondGeneration > 0, `a second generation attempt after republishing: ${calls.join(', ')}`);
    assert.deepEqual(new Set(afterFirst.slice(0, secondGeneration)), new Set(['publish-code-host-a-replica0', 'publish-code-host-b-replica1']));
    assert.equal(attempts, 2);
    // Replica a kept its weights (the probe showed them served: not reloaded); b was reloaded after its restart.
    assert.equal(await version(servers.a), 2);
    assert.equal(await version(servers.b), 2);
  });
});
