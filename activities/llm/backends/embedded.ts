import { log } from '@temporalio/activity';
import { adapterName } from '../checkpoint-names.js';
import { cardPath, modelCards } from '../model-cards.js';
import type { ServedModel } from '../model-cards.js';
import { ServedCheckpointChangedError } from '../served-errors.js';
import type { ServerApi } from '../server-api.js';
import { loadAdapter } from './adapters.js';
import { runProbe } from '../probe.js';
import type { Adapter, Dialect, FullWeights, Published, ServingBackend } from './backend.js';

/** vLLM's request and answer shapes, which the embedded server speaks (python/serving/chat.py). */
export const vllmDialect: Dialect = {
  select: (weights) => ({ model: weights }),
  // top_k 0 is vLLM's "no top-k"; the embedded server refuses any value it does not implement.
  neutralSampling: { top_k: 0, min_p: 0, repetition_penalty: 1, presence_penalty: 0, frequency_penalty: 0 },
  tokenIdFields: { return_token_ids: true },
  labelFields: {},
  completionTokenIds: (choice) => choice.token_ids,
  promptTokenIds: (body) => body.prompt_token_ids,
  answeredBy: (body) => (typeof body.system_fingerprint === 'string' ? body.system_fingerprint : undefined),
};

/**
 * The embedded server (python/model_server.py) loads any checkpoint on request:
 * `POST /v1/load_checkpoint {"path"}`, skipped when `GET /v1/models` already reports that
 * directory. Its `system_fingerprint` is unique per process and load, so every answer says which
 * weights produced it.
 */
export const embedded: ServingBackend = {
  kind: 'embedded',
  ...vllmDialect,

  async publishFull(api, weights) {
    // A server that reports the checkpoint may still answer from older weights (a reload that
    // kept them): with a probe, only its verdict lets the load be skipped.
    const reported = await servedCard(api, weights);
    if (reported && weights.probe) {
      const verdict = await runProbe(api, vllmDialect, weights.model, weights.model, weights.probe);
      if (verdict.ok) return { weights: weights.model, verdict, ...label(reported) };
      log.warn('the server reports the checkpoint but answers from other weights: loading it again', { root: api.root, path: weights.dir });
    }
    const card = await loadCheckpoint(api, weights, reported !== undefined && weights.probe !== undefined);
    return { weights: weights.model, ...label(card) };
  },

  async publishAdapter(api: ServerApi, adapter: Adapter): Promise<Published> {
    // Unlike vLLM and SGLang, this server can be asked to load the adapter's base first.
    await loadCheckpoint(api, adapter.base);
    const name = adapterName(adapter.checkpoint);
    const card = await loadAdapter(api, { load: '/v1/load_lora_adapter', unload: '/v1/unload_lora_adapter' }, name, adapter.dir);
    return { weights: name, ...label(card) };
  },
};

/** The server's model card when it reports serving `weights.dir`. */
async function servedCard(api: ServerApi, weights: FullWeights): Promise<ServedModel | undefined> {
  const current = (await modelCards(api)).find((m) => m.id === weights.model);
  return current && cardPath(current) === weights.dir ? current : undefined;
}

/** Loads `weights` unless the server reports them already (`force`: load anyway). */
async function loadCheckpoint(api: ServerApi, weights: FullWeights, force = false): Promise<ServedModel | undefined> {
  const card = async () => (await modelCards(api)).find((m) => m.id === weights.model);
  let current = await card();
  if (!force && current && cardPath(current) === weights.dir) return current;
  const loaded = (await api.post('/v1/load_checkpoint', { path: weights.dir })) as { version?: number };
  log.info('endpoint now serves the checkpoint', { root: api.root, path: weights.dir, version: loaded.version });
  current = await card();
  // Another load (a concurrent publish of a different checkpoint) won the race: try again later.
  if (!current || cardPath(current) !== weights.dir) throw new ServedCheckpointChangedError(`${api.root} does not report ${weights.dir} right after loading it`);
  return current;
}

const label = (card: ServedModel | undefined) => (card?.checkpoint?.fingerprint ? { label: card.checkpoint.fingerprint } : {});
