import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backendFor } from '../../../activities/llm/backends/index.js';
import { ChatClient, parseCompletion } from '../../../activities/llm/chat-client.js';
import { servingDir } from '../../../activities/llm/serving-dir.js';
import { cleanup, tempDir } from '../trainer/helpers.js';

after(cleanup);

const request = { messages: [{ role: 'user' as const, content: 'hi' }], n: 2, temperature: 1, topP: 0.95, maxTokens: 64, seed: 7 };
const client = (server: 'embedded' | 'vllm' | 'sglang', model: string) =>
  new ChatClient({ baseUrl: 'http://x/v1', model, base: 'base', dialect: backendFor(server) });

describe('each server is asked in its own way', () => {
  it('vLLM names the adapter as the model and pins every sampling parameter to its neutral value', () => {
    const body = client('vllm', 'code-r-it3').requestBody(request);
    assert.equal(body.model, 'code-r-it3');
    assert.equal(body.lora_path, undefined);
    assert.deepEqual(
      [body.temperature, body.top_p, body.max_tokens, body.seed, body.top_k, body.min_p, body.repetition_penalty, body.presence_penalty, body.frequency_penalty],
      [1, 0.95, 64, 7, 0, 0, 1, 0, 0],
    );
    assert.equal(body.return_token_ids, true);
  });

  it('SGLang keeps the base as the model and names the adapter in lora_path, with its own "no top-k"', () => {
    const body = client('sglang', 'code-r-it3').requestBody(request);
    assert.equal(body.model, 'base');
    assert.equal(body.lora_path, 'code-r-it3');
    assert.equal(body.top_k, -1);
    assert.equal(body.return_prompt_token_ids, true);
    assert.equal(client('sglang', 'base').requestBody(request).lora_path, undefined);
  });

  it("reads SGLang's per-choice token ids and its weight version", () => {
    const raw = {
      choices: [
        { index: 0, message: { content: 'a' }, finish_reason: 'stop', response_token_ids: [5, 6], prompt_token_ids: [1, 2, 3] },
        { index: 1, message: { content: 'b' }, finish_reason: 'length', response_token_ids: [7] },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 3 },
      metadata: { weight_version: 'r-code-it2' },
    };
    const parsed = parseCompletion(raw, 2, backendFor('sglang'));
    assert.deepEqual(parsed.choices.map((c) => c.tokenIds), [[5, 6], [7]]);
    assert.deepEqual(parsed.promptTokenIds, [1, 2, 3]);
    assert.equal(parsed.label, 'r-code-it2');
    // The same answer read as vLLM's finds no token ids where vLLM puts them.
    assert.equal(parseCompletion(raw, 2, backendFor('vllm')).choices[0]!.tokenIds, undefined);
  });

  it("takes vLLM's label from the last weight-version span, not from its per-launch fingerprint", () => {
    const raw = {
      system_fingerprint: 'launch-1',
      choices: [{ index: 0, message: { content: 'a' }, token_ids: [4], weight_versions: [{ version: 'v1', start: 0, end: 1 }, { version: 'v2', start: 1, end: 2 }] }],
      prompt_token_ids: [1],
      usage: { prompt_tokens: 1, completion_tokens: 1 },
    };
    assert.equal(parseCompletion(raw, 1, backendFor('vllm')).label, 'v2');
    assert.equal(parseCompletion(raw, 1, backendFor('embedded')).label, 'launch-1');
  });
});

describe('a server is given only the files it loads', () => {
  async function checkpoint(files: string[]): Promise<string> {
    const dir = join(await tempDir(), 'ckpt');
    await mkdir(dir);
    for (const f of files) await writeFile(join(dir, f), f);
    return dir;
  }

  it('leaves out the optimizer state, hard-linking the weights, config, tokenizer and probe', async () => {
    const dir = await checkpoint(['config.json', 'generation_config.json', 'tokenizer.json', 'model.safetensors', 'optimizer.safetensors', 'probe.json', 'metrics.json']);
    const work = await tempDir();
    const serving = await servingDir(dir, work);
    assert.notEqual(serving, dir);
    assert.deepEqual((await readdir(serving)).sort(), ['config.json', 'generation_config.json', 'metrics.json', 'model.safetensors', 'probe.json', 'tokenizer.json']);
    assert.equal((await stat(join(serving, 'model.safetensors'))).ino, (await stat(join(dir, 'model.safetensors'))).ino);
    assert.equal(await servingDir(dir, work), serving, 'built once and reused');
  });

  it("keeps an adapter's weights and only the shards an index names", async () => {
    const adapter = await checkpoint(['adapter_config.json', 'adapter_model.safetensors', 'optimizer.safetensors']);
    assert.deepEqual((await readdir(await servingDir(adapter, await tempDir()))).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
    const sharded = await checkpoint(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'extra.safetensors']);
    const map = { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' };
    await writeFile(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: map }));
    assert.deepEqual((await readdir(await servingDir(sharded, await tempDir()))).sort(), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
  });

  it('hands over a directory that holds nothing else as it is', async () => {
    const dir = await checkpoint(['config.json', 'model.safetensors', 'tokenizer.json']);
    assert.equal(await servingDir(dir, await tempDir()), dir);
  });
});
