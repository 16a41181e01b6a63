import { link, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256File } from '../../activities/trainer/layout.js';
import type { CheckpointManifest } from '../../activities/trainer/layout.js';
import { homedir } from 'node:os';
import { repoRoot, tempDir } from '../activities/trainer/helpers.js';
import { startProcess } from './processes.js';
import { writeSafetensors } from './safetensors.js';

/**
 * vLLM's and SGLang's own released code, serving on CPU without a GPU (python/conformance/): their
 * HTTP apps, request and response classes, adapter resolution, sampling defaults and weight
 * loaders, over a stub engine that generates no tokens. Each records what its server's own code made
 * of every request (`GET /conformance/log`).
 */
export interface ConformanceServer {
  /** `http://127.0.0.1:<port>/v1`, as a config's baseUrl. */
  baseUrl: string;
  root: string;
  log(): Promise<ConformanceEvent[]>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export type ConformanceEvent = Record<string, unknown> & { route: string; body?: unknown };

export async function startConformanceServer(
  server: 'vllm' | 'sglang',
  args: string[],
  env: Record<string, string> = {},
): Promise<ConformanceServer> {
  const python = join(repoRoot, `.venv-${server}`, 'bin', 'python');
  await stat(python).catch(() => {
    throw new Error(`${python} is missing: infra/install-conformance.sh ${server} installs ${server}'s released code (make test runs it)`);
  });
  // Starting builds the model on CPU through the server's own loader: minutes on a loaded machine.
  const child = await startProcess(python, [join(repoRoot, 'python', 'conformance', `${server}_server.py`), ...args], /ready http:\/\/\S+\n/, env, 600_000);
  const root = /ready (http:\/\/\S+)/.exec(child.readyOutput ?? '')?.[1];
  if (!root) throw new Error(`the ${server} conformance server printed no address:\n${child.readyOutput}`);
  return {
    baseUrl: `${root}/v1`,
    root,
    log: async () => (await (await fetch(`${root}/conformance/log`)).json()) as ConformanceEvent[],
    reset: async () => void (await fetch(`${root}/conformance/reset`, { method: 'POST' })),
    stop: async () => {
      child.process.kill('SIGTERM');
      await child.process;
    },
  };
}

/** Qwen2.5's generation_config.json as published upstream: sampling defaults a server applies unless the request overrides them. */
export const qwenGenerationConfig = {
  bos_token_id: 151643,
  pad_token_id: 151643,
  do_sample: true,
  eos_token_id: [151645, 151643],
  repetition_penalty: 1.1,
  temperature: 0.7,
  top_p: 0.8,
  top_k: 20,
};

export const probeMessages = [{ role: 'user', content: 'Write a Python function that returns the square of x.' }];

/** A probe record (activities/llm/probe.ts) the stub engines answer with when asked for it. */
function probeRecord(offset: number) {
  const ids = [750, 9334, 2075, 1648, 262, 470, 856, 353, 856].map((id) => id + offset);
  return {
    format: 'code-a1-probe-v1',
    messages: probeMessages,
    maxTokens: ids.length,
    dtype: 'float32',
    current: { tokenIds: ids, tokens: ids.map((id) => `t${id}`), logprobs: ids.map((_, i) => -0.1 * (i + 1)) },
  };
}

export interface QwenCheckpoints {
  /** What the servers are started on: the installed model with Qwen's upstream generation config. */
  launch: string;
  /** Full weights as the trainer writes them: the weights, AdamW moments beside them, probe, metrics. */
  trained: string;
  /** A file:// store holding LoRA adapters of iterations 1 (rank 16), 2 (rank 64) and 3 (rank 8), as updatePolicy stores them. */
  storeUri: string;
  adapter: string;
  wideAdapter: string;
  nextAdapter: string;
  /** An untrained iteration's checkpoint: an alias of `launch`. */
  alias: string;
}

const layers = 24;
const hidden = 896;
const kvWidth = 128; // 2 key/value heads of 64

/**
 * Qwen2.5-Coder-0.5B-Instruct (installed by infra/install-models.sh) in the shapes the project
 * publishes. Files are hard links to the installed weights; the optimizer state holds the trainer's
 * tensor names (`exp_avg/<parameter>`) at a fraction of their size.
 */
export async function qwenCheckpoints(): Promise<QwenCheckpoints> {
  const installed = join(process.env.CODE_A1_CACHE ?? join(homedir(), '.cache', 'code-a1'), 'models', 'qwen2.5-coder-0.5b-instruct');
  const root = await tempDir();
  const launch = await linkedCopy(installed, join(root, 'launch'));
  await writeFile(join(launch, 'generation_config.json'), JSON.stringify(qwenGenerationConfig));

  const trained = await linkedCopy(launch, join(root, 'trained'));
  await writeSafetensors(join(trained, 'optimizer.safetensors'), {
    'exp_avg/model.layers.0.self_attn.q_proj.weight': { shape: [hidden, hidden] },
    'exp_avg_sq/model.layers.0.self_attn.q_proj.weight': { shape: [hidden, hidden] },
    'exp_avg/model.norm.weight': { shape: [hidden] },
  }, { step: '1' });
  await writeFile(join(trained, 'probe.json'), JSON.stringify(probeRecord(0)));
  await writeFile(join(trained, 'metrics.json'), JSON.stringify({ steps: 1 }));

  const storeRoot = join(root, 'store');
  const storeUri = `file://${storeRoot}`;
  await storeAdapter(storeRoot, 1, 16, launch);
  await storeAdapter(storeRoot, 2, 64, launch);
  await storeAdapter(storeRoot, 3, 8, launch);
  const aliasPrefix = join(storeRoot, 'runs', 'conf', 'checkpoints', 'test', 'iter-0');
  await mkdir(aliasPrefix, { recursive: true });
  await writeFile(join(aliasPrefix, 'manifest.json'), JSON.stringify(manifest('test', 0, 'alias', [], launch, { alias: launch })));
  return { launch, trained, storeUri, adapter: `${storeUri}/runs/conf/checkpoints/code/iter-1`, wideAdapter: `${storeUri}/runs/conf/checkpoints/code/iter-2`, nextAdapter: `${storeUri}/runs/conf/checkpoints/code/iter-3`, alias: `${storeUri}/runs/conf/checkpoints/test/iter-0` };
}

async function linkedCopy(from: string, to: string): Promise<string> {
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) if ((await stat(join(from, name))).isFile()) await link(join(from, name), join(to, name));
  return to;
}

/** A peft-layout adapter on q_proj and v_proj of every layer, stored with its manifest as updatePolicy stores one. */
async function storeAdapter(storeRoot: string, iteration: number, rank: number, base: string): Promise<void> {
  const prefix = join(storeRoot, 'runs', 'conf', 'checkpoints', 'code', `iter-${iteration}`);
  const dirName = 'attempt-1-conformance';
  const dir = join(prefix, dirName);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'adapter_config.json'), JSON.stringify({
    peft_type: 'LORA', task_type: 'CAUSAL_LM', r: rank, lora_alpha: 2 * rank, lora_dropout: 0, bias: 'none',
    target_modules: ['q_proj', 'v_proj'], fan_in_fan_out: false, modules_to_save: null, use_rslora: false, use_dora: false,
    base_model_name_or_path: base, inference_mode: true,
  }));
  const tensors: Record<string, { shape: number[] }> = {};
  for (let l = 0; l < layers; l++) {
    for (const [module, out] of [['q_proj', hidden], ['v_proj', kvWidth]] as const) {
      tensors[`base_model.model.model.layers.${l}.self_attn.${module}.lora_A.weight`] = { shape: [rank, hidden] };
      tensors[`base_model.model.model.layers.${l}.self_attn.${module}.lora_B.weight`] = { shape: [out, rank] };
    }
  }
  await writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  await writeSafetensors(join(dir, 'optimizer.safetensors'), { 'exp_avg/base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [rank, hidden] } });
  await writeFile(join(dir, 'probe.json'), JSON.stringify(probeRecord(iteration)));
  const files = [];
  for (const name of (await readdir(dir)).sort()) files.push({ path: name, bytes: (await stat(join(dir, name))).size, sha256: await sha256File(join(dir, name)) });
  await writeFile(join(prefix, 'manifest.json'), JSON.stringify(manifest('code', iteration, dirName, files, base, { adapter: { model: base } })));
}

function manifest(role: 'code' | 'test', iteration: number, dir: string, files: CheckpointManifest['files'], base: string, extra: Partial<CheckpointManifest>): CheckpointManifest {
  return { schemaVersion: 1, runId: 'conf', role, iteration, dir, files, base, reference: base, trained: extra.alias === undefined, metrics: {}, ...extra };
}
