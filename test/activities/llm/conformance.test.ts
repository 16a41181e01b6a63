import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor } from '../../../activities/llm/backends/index.js';
import { vllm } from '../../../activities/llm/backends/vllm.js';
import { serverApi } from '../../../activities/llm/server-api.js';
import { ChatClient } from '../../../activities/llm/chat-client.js';
import { ensureServed } from '../../../activities/llm/served-checkpoint.js';
import type { Served } from '../../../activities/llm/served-checkpoint.js';
import { openStore } from '../../../activities/storage/index.js';
import { modelEndpointSchema } from '../../../config/run-config.js';
import { cleanup, inActivity, onCleanup, tempDir } from '../trainer/helpers.js';
import { probeMessages, qwenCheckpoints, qwenGenerationConfig, startConformanceServer } from '../../support/serving-conformance.js';
import type { ConformanceEvent, ConformanceServer, QwenCheckpoints } from '../../support/serving-conformance.js';

after(cleanup);

/**
 * The project against vLLM's and SGLang's own released code (pinned in
 * python/requirements-vllm.txt and python/requirements-sglang.txt), not against our reading of their
 * docs: their HTTP apps validate every request the project sends, their own code builds the
 * sampling parameters (with Qwen's generation_config.json present), resolves adapters and selects
 * and maps weight files on Qwen2.5-Coder-0.5B; the responses the client parses are built by their
 * own response classes.
 */
const request = { messages: probeMessages.map((m) => ({ role: 'user' as const, content: m.content })), n: 2, temperature: 1, topP: 0.95, maxTokens: 32, seed: 5 };

async function publish(server: ConformanceServer, kind: 'vllm' | 'sglang', launch: string, checkpoint: string): Promise<Served> {
  const workDir = await tempDir();
  const model = modelEndpointSchema.parse({ server: kind, baseUrl: server.baseUrl, model: 'qwen', checkpoint: launch });
  return inActivity((c: string) => ensureServed({ openStore: (u) => openStore(u), workDir, modelsDir: workDir }, model, c), checkpoint);
}

function client(server: ConformanceServer, kind: 'vllm' | 'sglang', weights = 'qwen'): ChatClient {
  return new ChatClient({ baseUrl: server.baseUrl, model: weights, base: 'qwen', dialect: backendFor(kind), maxAttempts: 1 });
}

const chats = (events: ConformanceEvent[]) => events.filter((e) => e.route === '/v1/chat/completions' && e.sampling_params !== undefined);

async function post(server: ConformanceServer, route: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.root}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

describe('vLLM 0.34 (its own server code on a stub engine)', () => {
  let ckpt: QwenCheckpoints;
  let server: ConformanceServer;

  before(async () => {
    ckpt = await qwenCheckpoints();
    server = await startConformanceServer(
      'vllm',
      ['--model', ckpt.launch, '--served-model-name', 'qwen', '--enable-lora', '--max-lora-rank', '16', '--max-loras', '2', '--dev-mode'],
      { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' },
    );
    onCleanup(() => server.stop());
  });

  it("loads a trained full-weight checkpoint through vLLM's own file selection and name mapping: every tensor a parameter, none missing", async () => {
    await server.reset();
    const served = await publish(server, 'vllm', ckpt.launch, ckpt.trained);
    const [reload] = (await server.log()).filter((e) => e.route === 'collective_rpc');
    assert.equal(reload?.method, 'reload_weights');
    assert.equal(reload?.error, null);
    assert.deepEqual(reload?.files, ['model.safetensors']);
    assert.deepEqual([reload?.unexpected, reload?.missing], [[], []]);
    assert.ok((reload?.tensors as number) > 200, `${String(reload?.tensors)} tensors`);
    // The weights are labelled, and vLLM's answers carry the label.
    assert.ok((await server.log()).some((e) => e.route === 'update_weight_version'));
    assert.match(served.label ?? '', /^ckpt-[0-9a-f]{16}$/);
    const answer = await client(server, 'vllm').complete(request);
    assert.equal(answer.label, served.label);
  });

  it('refuses the checkpoint directory as the trainer leaves it (the optimizer state is not weights), which fails the publish at once with its message', async () => {
    await server.reset();
    const { status } = await post(server, '/collective_rpc', { method: 'reload_weights', kwargs: { weights_path: ckpt.trained } });
    assert.equal(status, 500);
    const [reload] = (await server.log()).filter((e) => e.route === 'collective_rpc');
    assert.match(String(reload?.error ?? reload?.unexpected), /exp_avg/);
    // What publishing makes of such a refusal: no retry can fix it.
    await assert.rejects(
      inActivity((dir: string) => vllm.publishFull(serverApi(server.baseUrl), { model: 'qwen', checkpoint: dir, dir, initial: false }), ckpt.trained),
      (err: Error) => err.name === 'ModelConfigError' && /could not load .*no module or parameter named 'exp_avg/.test(err.message),
    );
  });

  it("builds exactly the trainer's sampling parameters from our request although Qwen's generation_config.json says otherwise", async () => {
    await server.reset();
    const answer = await client(server, 'vllm').complete(request);
    const [chat] = chats(await server.log());
    const p = chat!.sampling_params as Record<string, unknown>;
    assert.deepEqual(
      [p.n, p.temperature, p.top_p, p.max_tokens, p.seed, p.top_k, p.min_p, p.repetition_penalty, p.presence_penalty, p.frequency_penalty],
      [2, 1, 0.95, 32, 5, 0, 0, 1, 0, 0],
    );
    // The answer as vLLM's own classes build it: both choices' token ids and the prompt's.
    assert.equal(answer.choices.length, 2);
    assert.ok(answer.choices.every((c) => (c.tokenIds?.length ?? 0) > 0 && c.completionTokens === c.tokenIds!.length));
    assert.ok((answer.promptTokenIds?.length ?? 0) > 0);
    // What a request with only temperature and top_p gets: the checkpoint's defaults.
    await server.reset();
    await post(server, '/v1/chat/completions', { model: 'qwen', messages: request.messages, temperature: 1, top_p: 0.95, max_tokens: 8 });
    const bare = chats(await server.log())[0]!.sampling_params as Record<string, unknown>;
    assert.deepEqual([bare.top_k, bare.repetition_penalty], [qwenGenerationConfig.top_k, qwenGenerationConfig.repetition_penalty]);
  });

  it('serves a LoRA adapter by its versioned name, without the optimizer state beside it', async () => {
    await server.reset();
    const served = await publish(server, 'vllm', ckpt.launch, ckpt.adapter);
    assert.equal(served.model, 'code-conf-it1');
    const [load] = (await server.log()).filter((e) => e.route === 'add_lora');
    assert.equal(load?.error, null);
    await client(server, 'vllm', served.model).complete(request);
    assert.equal(chats(await server.log()).at(-1)!.lora, 'code-conf-it1');
    // The next iteration's adapter replaces it: loaded, and the earlier one unloaded through vLLM's route.
    const next = await publish(server, 'vllm', ckpt.launch, ckpt.nextAdapter);
    const listed = ((await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
    assert.deepEqual(listed.sort(), ['code-conf-it3', 'qwen']);
    assert.equal(next.model, 'code-conf-it3');
  });

  it("fails at once with vLLM's message when it refuses an adapter (a rank above --max-lora-rank)", async () => {
    await assert.rejects(publish(server, 'vllm', ckpt.launch, ckpt.wideAdapter), (err: Error) => {
      assert.equal(err.name, 'ModelConfigError');
      assert.match(err.message, /refused LoRA adapter code-conf-it2 .*rank/i);
      return true;
    });
  });

  it("publishes an untrained iteration (an alias of the run's initial model) without reloading anything", async () => {
    await server.reset();
    const served = await publish(server, 'vllm', ckpt.launch, ckpt.alias);
    assert.equal(served.model, 'qwen');
    assert.deepEqual((await server.log()).filter((e) => /collective_rpc|pause|reset_prefix_cache/.test(e.route)), []);
  });
});

describe('SGLang 0.5.23 (its own server code on a stub scheduler)', () => {
  let ckpt: QwenCheckpoints;
  let server: ConformanceServer;

  before(async () => {
    ckpt = await qwenCheckpoints();
    server = await startConformanceServer('sglang', [
      '--model', ckpt.launch, '--served-model-name', 'qwen', '--enable-lora', '--max-lora-rank', '16', '--lora-target-modules', 'all',
    ]);
    onCleanup(() => server.stop());
  });

  it("loads a trained full-weight checkpoint through SGLang's own file selection and name mapping, labelled with its weight version", async () => {
    await server.reset();
    const served = await publish(server, 'sglang', ckpt.launch, ckpt.trained);
    const [update] = (await server.log()).filter((e) => e.route === '/update_weights_from_disk');
    assert.deepEqual(update?.files, ['model.safetensors']);
    assert.deepEqual([update?.unexpected, update?.missing], [[], []]);
    const answer = await client(server, 'sglang').complete(request);
    assert.equal(answer.label, served.label);
  });

  it('builds exactly the trainer\'s sampling parameters from our request, and returns token ids where the client reads them', async () => {
    await server.reset();
    const answer = await client(server, 'sglang').complete(request);
    const [chat] = chats(await server.log());
    const p = chat!.sampling_params as Record<string, unknown>;
    assert.deepEqual(
      [p.temperature, p.top_p, p.max_new_tokens, p.min_p, p.repetition_penalty, p.presence_penalty, p.frequency_penalty],
      [1, 0.95, 32, 0, 1, 0, 0],
    );
    assert.ok(p.top_k === -1 || (p.top_k as number) >= 1 << 30, `top_k ${String(p.top_k)} is no top-k`);
    assert.ok(answer.choices.every((c) => (c.tokenIds?.length ?? 0) > 0));
    assert.ok((answer.promptTokenIds?.length ?? 0) > 0);
  });

  it("samples from the adapter the request names in lora_path, where a bare adapter name as model would select the base", async () => {
    await server.reset();
    const served = await publish(server, 'sglang', ckpt.launch, ckpt.adapter);
    assert.equal(served.model, 'code-conf-it1');
    await client(server, 'sglang', served.model).complete(request);
    assert.equal(chats(await server.log()).at(-1)!.lora, 'code-conf-it1');
    await publish(server, 'sglang', ckpt.launch, ckpt.nextAdapter);
    const listed = ((await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { id: string; parent?: string }[] }).data;
    // The base card's name is the last disk reload's path (SGLang renames the served model then): the
    // reason adapters are named in lora_path rather than as `<served>:<adapter>`.
    assert.deepEqual(listed.filter((m) => m.parent).map((m) => m.id), ['code-conf-it3']);
    await server.reset();
    const bare = await post(server, '/v1/chat/completions', { model: 'code-conf-it1', messages: request.messages, max_tokens: 4 });
    assert.equal(bare.status, 200, 'SGLang answers it, from the base');
    const [chat] = chats(await server.log());
    assert.ok(chat && 'lora' in chat, JSON.stringify(chat));
    assert.equal(chat.lora, null);
  });
});
