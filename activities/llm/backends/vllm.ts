import { log } from '@temporalio/activity';
import { adapterName, weightVersion } from '../checkpoint-names.js';
import { ModelConfigError } from '../errors.js';
import { runProbe } from '../probe.js';
import type { ServerApi } from '../server-api.js';
import { ModelServerError } from '../server-api.js';
import { loadAdapter } from './adapters.js';
import type { FullWeights, ServingBackend } from './backend.js';
import { vllmDialect } from './embedded.js';

const legacyReload = /unexpected keyword argument '?weights_path'?/;
/** vLLM answers these when its engine died, not when it refused the adapter: a restart helps. */
const engineDead = /EngineDeadError|EngineCore|engine (core|loop).*(died|dead)/i;

/**
 * vLLM (verified against the released code of vllm 0.34.0, python/requirements-vllm.txt).
 *
 * Adapters: `/v1/load_lora_adapter` and `/v1/unload_lora_adapter` (`--enable-lora` and
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING=True); requests name the adapter in `model`.
 *
 * Full weights (VLLM_SERVER_DEV_MODE=1): `/pause?mode=wait`, `/collective_rpc {"method":
 * "reload_weights", "kwargs": {"weights_path"}}`, `/reset_prefix_cache` (a reload keeps prefixes
 * cached under the old weights), `/update_weight_version {"new_version"}` where the release has it
 * (answers then carry `weight_versions` spans naming it), `/resume`. vLLM keeps reporting its launch
 * path in /v1/models, so only the probe can say what it serves. The run's initial checkpoint is the
 * one the server was started on and is never reloaded: a vLLM serving LoRA adapters has no dev-mode
 * routes to call.
 */
export const vllm: ServingBackend = {
  kind: 'vllm',
  ...vllmDialect,
  // Without it vLLM leaves the spans out of its answers.
  labelFields: { return_weight_versions: true },
  answeredBy: (_body, choice) => {
    const spans = choice?.weight_versions;
    const last = Array.isArray(spans) ? (spans.at(-1) as { version?: unknown } | undefined) : undefined;
    return typeof last?.version === 'string' ? last.version : undefined;
  },

  async publishFull(api, weights) {
    const version = weightVersion(weights.checkpoint);
    if (!weights.probe && weights.initial) return { weights: weights.model };
    // A retried publish: the probe tells whether the reload already happened.
    const before = weights.probe ? await runProbe(api, vllm, weights.model, weights.model, weights.probe) : undefined;
    if (before?.ok && before.distinguishable) {
      const current = await weightInfo(api);
      return { weights: weights.model, verdict: before, ...(current === version ? { label: version } : {}) };
    }
    const labelled = await reload(api, weights, version);
    return { weights: weights.model, ...(labelled ? { label: version } : {}) };
  },

  async publishAdapter(api, adapter) {
    const name = adapterName(adapter.checkpoint);
    const load = (body: { lora_name: string; lora_path: string }) =>
      api.post('/v1/load_lora_adapter', body).catch((err: unknown) => rethrowRefusal(err, `${api.root} refused LoRA adapter ${body.lora_name} (${body.lora_path})`));
    await loadAdapter(api, { load: '/v1/load_lora_adapter', unload: '/v1/unload_lora_adapter' }, name, adapter.dir, load);
    return { weights: name, label: undefined };
  },
};

/** Reloads and labels the weights; false when this release cannot label them. */
async function reload(api: ServerApi, weights: FullWeights, version: string): Promise<boolean> {
  const paused = await optional(api.post('/pause?mode=wait'));
  let labelled = false;
  try {
    await api.post('/collective_rpc', { method: 'reload_weights', kwargs: { weights_path: weights.dir } }).catch((err: unknown) => {
      const text = err instanceof ModelServerError ? `${err.body ?? ''} ${err.message}` : String(err);
      if (legacyReload.test(text)) {
        throw new ModelConfigError(
          `${api.root}: this vLLM release's reload_weights takes no weights_path, so new full weights cannot be published to it; ` +
            'upgrade vLLM to a release whose reload_weights accepts weights_path, train LoRA adapters instead (trainer.lora), or restart vllm serve on each checkpoint',
        );
      }
      rethrowRefusal(err, `${api.root} could not load ${weights.dir} (it may now hold partly reloaded weights: restart it on the role's checkpoint once the cause is fixed)`);
    });
    await api.post('/reset_prefix_cache');
    labelled = await optional(api.post('/update_weight_version', { new_version: version }));
  } finally {
    if (paused) await api.post('/resume');
  }
  log.info('vLLM reloaded the weights', { root: api.root, path: weights.dir, version: labelled ? version : undefined });
  return labelled;
}

/** Runs a route that older releases lack: false when it answered 404. */
async function optional(call: Promise<unknown>): Promise<boolean> {
  return call.then(
    () => true,
    (err: unknown) => {
      if (err instanceof ModelConfigError && err.status === 404) return false;
      throw err;
    },
  );
}

/** The weight version vLLM reports (`GET /weight_info`, 0.34 on), undefined where it has none. */
async function weightInfo(api: ServerApi): Promise<string | undefined> {
  const info = (await api.get('/weight_info').catch((err: unknown) => {
    if (err instanceof ModelConfigError && err.status === 404) return undefined;
    throw err;
  })) as { weight_version?: unknown } | undefined;
  return typeof info?.weight_version === 'string' ? info.weight_version : undefined;
}

/**
 * vLLM answers 500 with its error body when its engine refuses what it was given: an adapter (a
 * rank above `--max-lora-rank`, a module it cannot apply LoRA to, unreadable files) or weights
 * (`collective_rpc` reload_weights: a tensor the model has no parameter for, a shape mismatch).
 * No retry changes that, so the stage fails with vLLM's message instead of retrying without end;
 * a dead engine is the exception, and stays retryable.
 */
function rethrowRefusal(err: unknown, what: string): never {
  if (err instanceof ModelServerError && err.status === 500 && err.body !== undefined) {
    const message = errorMessage(err.body);
    if (message !== undefined && !engineDead.test(message)) throw new ModelConfigError(`${what}: ${message}`, 500, { cause: err });
  }
  throw err;
}

function errorMessage(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } };
    return typeof parsed.error?.message === 'string' ? parsed.error.message : undefined;
  } catch {
    return undefined;
  }
}
