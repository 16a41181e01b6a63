import { log } from '@temporalio/activity';
import { adapterName, weightVersion } from '../checkpoint-names.js';
import { ServedCheckpointChangedError } from '../served-errors.js';
import { ModelServerError } from '../server-api.js';
import type { ServerApi } from '../server-api.js';
import { loadAdapter } from './adapters.js';
import { runProbe } from '../probe.js';
import type { Dialect, ServingBackend } from './backend.js';

interface ModelInfo {
  model_path?: string;
  weight_version?: string;
}

/**
 * SGLang's request and answer shapes (verified against the released code of sglang 0.5.23,
 * python/requirements-sglang.txt). An adapter is chosen by `lora_path` (the adapter's name):
 * SGLang reads it from the request or from `model: "<served>:<adapter>"`, and a bare adapter name
 * as `model` silently selects the base; the prefix form breaks once a disk reload renames the
 * served model, so requests carry `lora_path`. Token ids come back per choice as
 * `response_token_ids` and `prompt_token_ids`; every answer's `metadata.weight_version` names the
 * weights.
 */
export const sglangDialect: Dialect = {
  select: (weights, base) => (weights === base ? { model: base } : { model: base, lora_path: weights }),
  // SGLang's "no top-k" is -1 (0 is refused).
  neutralSampling: { top_k: -1, min_p: 0, repetition_penalty: 1, presence_penalty: 0, frequency_penalty: 0 },
  tokenIdFields: { return_token_ids: true, return_prompt_token_ids: true },
  labelFields: {},
  completionTokenIds: (choice) => choice.response_token_ids,
  promptTokenIds: (body, choice) => choice?.prompt_token_ids ?? body.prompt_token_ids,
  answeredBy: (body) => {
    const version = (body.metadata as { weight_version?: unknown } | undefined)?.weight_version;
    return typeof version === 'string' ? version : undefined;
  },
};

/**
 * SGLang: `POST /update_weights_from_disk {"model_path", "weight_version", "flush_cache": true}`
 * must answer `success: true`, and `GET /model_info` must then report that path and version;
 * skipped when it already does, or when the server still serves the run's initial checkpoint it
 * was started on. Adapters: `/load_lora_adapter`, `/unload_lora_adapter` (`--enable-lora`).
 */
export const sglang: ServingBackend = {
  kind: 'sglang',
  ...sglangDialect,

  async publishFull(api, weights) {
    const version = weightVersion(weights.checkpoint);
    const info = async () => (await api.get('/model_info')) as ModelInfo;
    const current = await info();
    if (!weights.probe && weights.initial && current.model_path === weights.dir) {
      return { weights: weights.model, ...(current.weight_version ? { label: current.weight_version } : {}) };
    }
    if (current.model_path === weights.dir && current.weight_version === version) {
      // Reported is not proof (a reload that kept the old weights): with a probe, its verdict decides.
      if (!weights.probe) return { weights: weights.model, label: version };
      const verdict = await runProbe(api, sglangDialect, weights.model, weights.model, weights.probe);
      if (verdict.ok) return { weights: weights.model, label: version, verdict };
      log.warn('SGLang reports the checkpoint but answers from other weights: loading it again', { root: api.root, path: weights.dir });
    }
    const answer = (await api.post('/update_weights_from_disk', { model_path: weights.dir, weight_version: version, flush_cache: true })) as {
      success?: boolean;
      message?: string;
    };
    if (answer?.success !== true) throw new ModelServerError(`${api.root}/update_weights_from_disk did not succeed: ${JSON.stringify(answer).slice(0, 2_000)}`);
    const after = await info();
    if (after.model_path !== weights.dir || after.weight_version !== version) {
      throw new ServedCheckpointChangedError(`${api.root}/model_info reports ${after.model_path} version ${after.weight_version} right after loading ${weights.dir} as ${version}`);
    }
    log.info('SGLang serves the checkpoint', { root: api.root, path: weights.dir, version });
    return { weights: weights.model, label: version };
  },

  async publishAdapter(api: ServerApi, adapter) {
    const name = adapterName(adapter.checkpoint);
    await loadAdapter(api, { load: '/load_lora_adapter', unload: '/unload_lora_adapter' }, name, adapter.dir);
    return { weights: name };
  },
};
