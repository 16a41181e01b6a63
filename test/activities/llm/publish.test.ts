import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { createPublishPolicyActivity } from '../../../activities/publish-policy.js';
import { createUpdatePolicyActivity } from '../../../activities/update-policy.js';
import { openStore } from '../../../activities/storage/index.js';
import { materialise } from '../../../activities/trainer/index.js';
import { PROBE_TOLERANCE } from '../../../activities/llm/probe.js';
import type { ProbeRecord } from '../../../activities/llm/probe.js';
import { modelEndpointSchema } from '../../../config/run-config.js';
import type { RunConfig } from '../../../config/run-config.js';
import { startModelServer } from '../../../infra/model-server.js';
import type { ModelServer } from '../../../infra/model-server.js';
import { startFaultProxy } from '../../support/fault-proxy.js';
import type { FaultProxy } from '../../support/fault-proxy.js';
import { cleanup, codeRollout, fileStore, inActivity, onCleanup, tempDir, tinyModel, trainerConfig, writeCodeStage } from '../trainer/helpers.js';

after(cleanup);

const lora = { rank: 4, alpha: 16, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] };

/**
 * Publishing to each kind of server, against real embedded server processes speaking that
 * server's routes, through a proxy that records every request: the calls and their bodies must be
 * the documented ones (docs/trainer-contract.md, "Publishing"), and the probe must run after them.
 */
describe('publishing to vLLM, SGLang and the embedded server', () => {
  let base: string;
  let uri: string;
  /** One trained full-weight checkpoint and one LoRA adapter, both from the built-in trainer (so both carry a probe). */
  const trained: { full?: string; adapter?: string } = {};

  before(async () => {
    base = await tinyModel();
    ({ uri } = await fileStore());
    const workDir = await tempDir();
    const { updatePolicy } = createUpdatePolicyActivity({ openStore: (u) => openStore(u), workDir, modelsDir: workDir });
    const prompt = [1, 5, 9, 12];
    const rollouts = [3, 4, 5, 6].map((t, i) => codeRollout('q1', i, prompt, [t, t + 1, t + 2, 2], base));
    // A large LoRA step: a fresh adapter starts at zero, and the probe must see it move (a small step
    // may be within the probe's tolerance, which it then reports as indistinguishable).
    for (const [kind, trainer] of [['full', trainerConfig()], ['adapter', trainerConfig({ lora, learningRate: 0.2 })]] as const) {
      const runId = `pub-${kind}`;
      const stage = await writeCodeStage(openStore(uri), runId, 0, rollouts, [1, -1, 0.5, -0.5]);
      const ref = { runId, iteration: 0, storageUri: uri };
      const updated = await inActivity(updatePolicy, { ...ref, role: 'code', ...stage, baseCheckpoint: base, referenceCheckpoint: base, trainer });
      trained[kind] = updated.checkpoint;
    }
  });

  async function serve(args: string[] = []): Promise<{ server: ModelServer; proxy: FaultProxy }> {
    const server = await startModelServer({ checkpoint: base, model: 'tiny', threads: 1, args });
    onCleanup(() => server.stop());
    const proxy = await startFaultProxy(server.baseUrl);
    onCleanup(() => proxy.close());
    return { server, proxy };
  }

  async function publisher() {
    const workDir = await tempDir();
    const { publishPolicy } = createPublishPolicyActivity({ openStore: (u) => openStore(u), workDir, modelsDir: workDir });
    return (model: RunConfig['models']['code'], checkpoint: string) =>
      inActivity(publishPolicy, { runId: 'pub', iteration: 1, storageUri: uri, role: 'code', model, checkpoint });
  }

  const endpoint = (baseUrl: string, server: 'embedded' | 'vllm' | 'sglang') => modelEndpointSchema.parse({ server, baseUrl, model: 'tiny', checkpoint: base });
  const admin = (proxy: FaultProxy) => proxy.calls.filter((c) => !c.route.startsWith('GET /v1/models') && !c.route.startsWith('POST /v1/chat/completions'));
  const probes = (proxy: FaultProxy) => proxy.calls.filter((c) => c.route === 'POST /v1/chat/completions').map((c) => c.body as Record<string, unknown>);
  const health = async (server: ModelServer) => (await (await fetch(server.baseUrl.replace(/\/v1$/, '/health'))).json()) as Record<string, unknown>;
  const localDir = async (checkpoint: string) => realpath((await materialise(checkpoint, (u) => openStore(u), await tempDir())).dir);
  /** The server got the checkpoint's files without the optimizer state: the weights themselves, linked. */
  async function assertServable(path: string, checkpoint: string, weights: string): Promise<void> {
    const dir = await localDir(checkpoint);
    const files = (await readdir(dir)).filter((f) => f !== 'optimizer.safetensors').sort();
    assert.ok((await readdir(dir)).includes('optimizer.safetensors'));
    assert.deepEqual((await readdir(path)).sort(), files);
    assert.equal((await stat(`${path}/${weights}`)).ino, (await stat(`${dir}/${weights}`)).ino);
  }

  it('vLLM full weights: pause, collective_rpc reload_weights from the directory, reset the prefix cache, resume; then the probe', async () => {
    const { server, proxy } = await serve();
    const publish = await publisher();
    await publish(endpoint(proxy.baseUrl, 'vllm'), trained.full!);
    const calls = admin(proxy);
    assert.deepEqual(
      calls.map((c) => c.route),
      ['POST /pause?mode=wait', 'POST /collective_rpc', 'POST /reset_prefix_cache', 'POST /update_weight_version', 'POST /resume'],
    );
    const rpc = calls[1]!.body as { method: string; kwargs: { weights_path: string } };
    assert.equal(rpc.method, 'reload_weights');
    await assertServable(rpc.kwargs.weights_path, trained.full!, 'model.safetensors');
    assert.deepEqual(calls[3]!.body, { new_version: 'pub-full-code-it0' });
    assert.equal((await health(server)).checkpoint_version, 2);
    // The probe: a greedy completion with log-probs, the OpenAI fields vLLM implements.
    const [probe] = probes(proxy).slice(-1);
    assert.equal(probe!.temperature, 0);
    assert.equal(probe!.logprobs, true);
    assert.equal(probe!.model, 'tiny');

    // Published again: the probe shows the server already serves it, so nothing is reloaded.
    const before = admin(proxy).length;
    await publish(endpoint(proxy.baseUrl, 'vllm'), trained.full!);
    assert.deepEqual(admin(proxy).slice(before).map((c) => c.route), ['GET /weight_info'], 'asked for its label, not reloaded');
    assert.equal((await health(server)).checkpoint_version, 2);
  });

  it('SGLang full weights: update_weights_from_disk with a weight version, then model_info must report both', async () => {
    const { server, proxy } = await serve();
    const publish = await publisher();
    await publish(endpoint(proxy.baseUrl, 'sglang'), trained.full!);
    const calls = admin(proxy);
    assert.deepEqual(
      calls.map((c) => c.route),
      ['GET /model_info', 'POST /update_weights_from_disk', 'GET /model_info'],
    );
    const update = calls[1]!.body as { model_path: string; weight_version: string; flush_cache: boolean };
    await assertServable(update.model_path, trained.full!, 'model.safetensors');
    assert.equal(update.weight_version, 'pub-full-code-it0');
    assert.equal(update.flush_cache, true);
    const info = (await (await fetch(`${server.baseUrl.replace(/\/v1$/, '')}/model_info`)).json()) as { model_path: string; weight_version: string };
    assert.deepEqual([info.model_path, info.weight_version], [update.model_path, 'pub-full-code-it0']);
    await publish(endpoint(proxy.baseUrl, 'sglang'), trained.full!);
    assert.deepEqual(
      admin(proxy).slice(3).map((c) => c.route),
      ['GET /model_info'],
      'already served: checked, not reloaded',
    );
  });

  for (const kind of ['vllm', 'sglang'] as const) {
    it(`${kind} LoRA: load_lora_adapter under the versioned name, sample by that name, probe it`, async () => {
      const { proxy } = await serve();
      const publish = await publisher();
      await publish(endpoint(proxy.baseUrl, kind), trained.adapter!);
      const prefix = kind === 'vllm' ? '/v1' : '';
      const loads = admin(proxy).filter((c) => c.route === `POST ${prefix}/load_lora_adapter`);
      assert.equal(loads.length, 1);
      const body = loads[0]!.body as { lora_name: string; lora_path: string };
      assert.equal(body.lora_name, 'code-pub-adapter-it0');
      await assertServable(body.lora_path, trained.adapter!, 'adapter_model.safetensors');
      // vLLM names the adapter as the model; SGLang takes it from lora_path (a bare adapter name as model selects its base).
      const probe = probes(proxy).at(-1)!;
      if (kind === 'vllm') assert.equal(probe.model, 'code-pub-adapter-it0');
      else assert.deepEqual([probe.model, probe.lora_path], ['tiny', 'code-pub-adapter-it0']);
      // No full-weight reload: vLLM and SGLang keep the base they were started with.
      assert.ok(!admin(proxy).some((c) => /collective_rpc|update_weights_from_disk|load_checkpoint/.test(c.route)));
    });
  }

  it('catches a server that answers every reload with success and keeps its old weights', async () => {
    const { server, proxy } = await serve(['--fault', 'ignore-reloads']);
    const publish = await publisher();
    await assert.rejects(publish(endpoint(proxy.baseUrl, 'vllm'), trained.full!), {
      name: 'ServedCheckpointChangedError',
      message: /greedy log-probs differ .* kept the old weights/,
    });
    await assert.rejects(publish(endpoint(proxy.baseUrl, 'embedded'), trained.full!), { name: 'ServedCheckpointChangedError' });
    await assert.rejects(publish(endpoint(proxy.baseUrl, 'vllm'), trained.adapter!), { name: 'ServedCheckpointChangedError' });
    // What it claims to serve: the lie the probe saw through.
    const models = (await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { id: string }[] };
    assert.ok(models.data.some((m) => m.id === 'code-pub-adapter-it0'));
  });

  it('names the way out when a vLLM release cannot reload from a path', async () => {
    const { proxy } = await serve(['--fault', 'reload-without-path']);
    const publish = await publisher();
    await assert.rejects(publish(endpoint(proxy.baseUrl, 'vllm'), trained.full!), {
      name: 'ModelConfigError',
      message: /reload_weights takes no weights_path.*upgrade vLLM/,
    });
    // The server was resumed although the reload failed.
    const paused = (await (await fetch(`${proxy.baseUrl.replace(/\/v1$/, '')}/is_paused`)).json()) as { is_paused: boolean };
    assert.equal(paused.is_paused, false);
  });

  it('asks the server it published to for the probe the checkpoint records, and the served weights answer as recorded', async () => {
    const { proxy } = await serve();
    const publish = await publisher();
    await publish(endpoint(proxy.baseUrl, 'embedded'), trained.full!);
    const dir = await localDir(trained.full!);
    const probe = JSON.parse(await readFile(`${dir}/probe.json`, 'utf8')) as ProbeRecord;
    const asked = probes(proxy).at(-1)!;
    assert.deepEqual([asked.messages, asked.max_tokens, asked.temperature, asked.logprobs], [probe.messages, probe.maxTokens, 0, true]);
    // The same question once more: the served log-probs are the trainer's, within the probe's tolerance.
    const answer = (await (await fetch(`${proxy.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(asked) })).json()) as {
      choices: { logprobs: { content: { logprob: number }[] } }[];
    };
    const served = answer.choices[0]!.logprobs.content.map((c) => c.logprob);
    assert.equal(served.length, probe.current.logprobs.length, 'the greedy completion the trainer recorded, token for token');
    const meanAbs = served.reduce((sum, lp, i) => sum + Math.abs(lp - probe.current.logprobs[i]!), 0) / served.length;
    assert.ok(meanAbs <= PROBE_TOLERANCE, `mean |Δ log-prob| ${meanAbs}`);
  });
});
