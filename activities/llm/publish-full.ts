import { log } from '@temporalio/activity';
import { ModelConfigError } from './errors.js';
import { cardPath, checkpointDigest, checkpointIdentity, modelCards } from './publish-adapter.js';
import { ServedCheckpointChangedError } from './served-errors.js';
import type { ServerApi } from './server-api.js';
import { ModelServerError } from './server-api.js';

export type ServerKind = 'embedded' | 'vllm' | 'sglang';

/** SGLang's `weight_version` for a checkpoint: `<runId>-it<n>` for updatePolicy's, else a digest of the reference. */
export function weightVersion(checkpoint: string): string {
  const id = checkpointIdentity(checkpoint);
  return id ? `${id.runId}-${id.role}-it${id.iteration}` : `ckpt-${checkpointDigest(checkpoint)}`;
}

/** What a full-weight publish leaves behind: the fingerprint the embedded server stamps on answers. */
export interface FullPublish {
  fingerprint?: string;
  /** False when the server already reported these weights and nothing was loaded. */
  loaded: boolean;
}

/**
 * The embedded server: `POST /v1/load_checkpoint {"path"}`, skipped when `GET /v1/models` already
 * reports that directory for the model.
 */
export async function publishEmbedded(api: ServerApi, model: string, dir: string): Promise<FullPublish> {
  const card = async () => (await modelCards(api)).find((m) => m.id === model);
  let current = await card();
  if (current && cardPath(current) === dir) return { loaded: false, ...fingerprintOf(current) };
  const loaded = (await api.post('/v1/load_checkpoint', { path: dir })) as { version?: number };
  log.info('endpoint now serves the checkpoint', { root: api.root, path: dir, version: loaded.version });
  current = await card();
  // Another load (a concurrent publish of a different checkpoint) won the race: try again later.
  if (!current || cardPath(current) !== dir) throw new ServedCheckpointChangedError(`${api.root} does not report ${dir} right after loading it`);
  return { loaded: true, ...fingerprintOf(current) };
}

const fingerprintOf = (card: { checkpoint?: { fingerprint?: string } }) => (card.checkpoint?.fingerprint ? { fingerprint: card.checkpoint.fingerprint } : {});

const legacyReload = /unexpected keyword argument '?weights_path'?/;

/**
 * vLLM in dev mode (VLLM_SERVER_DEV_MODE=1): `POST /collective_rpc {"method": "reload_weights",
 * "kwargs": {"weights_path": DIR}}`, then `POST /reset_prefix_cache` (a reload keeps cached
 * prefixes computed by the old weights), wrapped in `/pause?mode=wait` and `/resume` where the
 * release has them. vLLM keeps reporting its launch path in /v1/models, so only the probe can say
 * what it serves; the caller decides whether to reload.
 */
export async function publishVllmFull(api: ServerApi, dir: string): Promise<FullPublish> {
  const paused = await api.post('/pause?mode=wait').then(
    () => true,
    (err: unknown) => {
      if (err instanceof ModelConfigError && err.status === 404) return false; // releases before /pause
      throw err;
    },
  );
  try {
    await api.post('/collective_rpc', { method: 'reload_weights', kwargs: { weights_path: dir } }).catch((err: unknown) => {
      const text = err instanceof ModelServerError ? `${err.body ?? ''} ${err.message}` : String(err);
      if (legacyReload.test(text)) {
        throw new ModelConfigError(
          `${api.root}: this vLLM release's reload_weights takes no weights_path, so new full weights cannot be published to it; ` +
            'upgrade vLLM to a release whose reload_weights accepts weights_path, train LoRA adapters instead (trainer.lora), or restart vllm serve on each checkpoint',
        );
      }
      throw err;
    });
    await api.post('/reset_prefix_cache');
  } finally {
    if (paused) await api.post('/resume');
  }
  log.info('vLLM reloaded the weights', { root: api.root, path: dir });
  return { loaded: true };
}

interface SglangModelInfo {
  model_path?: string;
  weight_version?: string;
}

/**
 * SGLang: `POST /update_weights_from_disk {"model_path", "weight_version", "flush_cache": true}`
 * must answer `success: true`, and `GET /model_info` must then report that path and version;
 * skipped when it already does.
 */
export async function publishSglangFull(api: ServerApi, checkpoint: string, dir: string): Promise<FullPublish> {
  const version = weightVersion(checkpoint);
  const info = async () => (await api.get('/model_info')) as SglangModelInfo;
  const serves = (i: SglangModelInfo) => i.model_path === dir && i.weight_version === version;
  if (serves(await info())) return { loaded: false };
  const answer = (await api.post('/update_weights_from_disk', { model_path: dir, weight_version: version, flush_cache: true })) as { success?: boolean; message?: string };
  if (answer?.success !== true) throw new ModelServerError(`${api.root}/update_weights_from_disk did not succeed: ${JSON.stringify(answer).slice(0, 2_000)}`);
  const after = await info();
  if (!serves(after)) {
    throw new ServedCheckpointChangedError(`${api.root}/model_info reports ${after.model_path} version ${after.weight_version} right after loading ${dir} as ${version}`);
  }
  log.info('SGLang serves the checkpoint', { root: api.root, path: dir, version });
  return { loaded: true };
}
