import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from '../deps.js';
import { fullWeights, loadPolicy } from '../trainer/index.js';
import { ModelConfigError } from './errors.js';
import type { ModelEndpoint } from '../../config/run-config.js';

/** The endpoint is unreachable or failed (5xx): retried, the server may be starting or restarting. */
export class ModelServerError extends Error {
  override name = 'ModelServerError';
}

/**
 * The endpoint started serving other weights while a stage sampled from it (a restarted embedded
 * server comes back with its initial checkpoint). Retried: the next attempt publishes the
 * checkpoint again before it samples, so no rollout is recorded under the wrong checkpoint.
 */
export class ServedCheckpointChangedError extends Error {
  override name = 'ServedCheckpointChangedError';
}

export interface ServingDeps extends StorageDeps {
  /** Where checkpoints from S3 are downloaded to; the model server must read the same disk. */
  workDir: string;
  /** Where `model:<name>` checkpoints are installed. */
  modelsDir: string;
  /** The worker environment, for the API key a model endpoint names in `apiKeyEnv`. */
  secrets?: Readonly<Record<string, string | undefined>>;
}

/** What an endpoint serves once `ensureServed` returns. */
export interface Served {
  path: string;
  /**
   * The `system_fingerprint` every completion from these weights carries (the embedded server
   * makes it unique per process and load); absent when the endpoint does not report one.
   */
  fingerprint?: string;
  /** The name requests must carry: the endpoint's model, or the versioned name of the LoRA adapter. */
  model: string;
}

interface ServedModel {
  id?: string;
  root?: string;
  parent?: string | null;
  checkpoint?: { path?: string; fingerprint?: string };
}

/**
 * The served name of an adapter: `<role>-<runId>-it<n>` for the checkpoint updatePolicy wrote
 * for that role and iteration, so the model name of every request and rollout says which
 * weights answered; a new name per version, as vLLM's runtime LoRA API expects.
 */
export function adapterName(checkpoint: string): string {
  const m = /\/runs\/([^/]+)\/checkpoints\/(code|test)\/iter-(\d+)\/?$/.exec(checkpoint);
  if (m) return `${m[2]}-${m[1]}-it${m[3]}`;
  return `lora-${createHash('sha256').update(checkpoint).digest('hex').slice(0, 16)}`;
}

/**
 * Makes `model`'s endpoint serve `checkpoint` (a local directory, `model:<name>`, or a finished
 * checkpoint in object storage), with the checkpoint's files materialised on this worker's disk
 * first, so the server must run on the same machine:
 *
 * - full weights: the embedded server's `POST /v1/load_checkpoint {"path"}` (python/model_server.py),
 *   a no-op when `GET /v1/models` already reports that directory. vLLM has no such endpoint and
 *   answers 404, which fails as ModelConfigError (docs/trainer-contract.md, "Publishing to vLLM");
 * - a LoRA adapter: vLLM's runtime LoRA API, which the embedded server speaks too:
 *   `POST /v1/load_lora_adapter {"lora_name", "lora_path"}` under a name per version, then
 *   `POST /v1/unload_lora_adapter` for this role's earlier versions of the run.
 */
export async function ensureServed(deps: ServingDeps, model: ModelEndpoint, checkpoint: string): Promise<Served> {
  const policy = await loadPolicy(checkpoint, {
    openStore: deps.openStore,
    modelsDir: deps.modelsDir,
    cacheDir: join(deps.workDir, 'checkpoints'),
    onFile: (done, total) => heartbeat({ phase: 'download', done, total }),
  });
  // The server reports the path it resolved; compare like with like.
  const full = await realpath(fullWeights(policy).dir);
  const root = model.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  const apiKey = model.apiKeyEnv ? deps.secrets?.[model.apiKeyEnv] : undefined;
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) };

  const call = async (method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> => {
    const url = `${root}${route}`;
    // Loading large weights takes minutes; the open request is the progress worth reporting.
    const started = Date.now();
    const beat = setInterval(() => heartbeat({ phase: route, waitingMs: Date.now() - started }), 5_000);
    try {
      const signal = cancellationSignal();
      const res = await fetch(url, { method, headers, signal, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }).catch((err: unknown) => {
        if (signal.aborted) throw err;
        throw new ModelServerError(`${method} ${url} failed: ${String(err)}`, { cause: err });
      });
      const text = await res.text();
      if (res.status >= 400 && res.status < 500) throw new ModelConfigError(`${method} ${url} answered ${res.status}: ${text.slice(0, 2_000)}`, res.status);
      if (!res.ok) throw new ModelServerError(`${method} ${url} answered ${res.status}: ${text.slice(0, 2_000)}`);
      // vLLM answers the LoRA routes with plain text ("Success: LoRA adapter ... added successfully.").
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    } finally {
      clearInterval(beat);
    }
  };
  const cards = async (): Promise<ServedModel[]> => ((await call('GET', '/v1/models')) as { data?: ServedModel[] }).data ?? [];
  const pathOf = (card: ServedModel) => card.checkpoint?.path ?? card.root;

  // 1. The full weights: the model itself, or the base an adapter applies to.
  let listed = await cards();
  const baseCard = () => listed.find((m) => m.id === model.model);
  // An adapter needs the right base; vLLM's card does not report a local path (it cannot change
  // its base anyway), so only a server that reports one is asked to load another.
  const baseIsRight = (card: ServedModel | undefined) =>
    card !== undefined && (pathOf(card) === full || (policy.adapterOf !== undefined && card.checkpoint?.path === undefined));
  if (!baseIsRight(baseCard())) {
    const loaded = (await call('POST', '/v1/load_checkpoint', { path: full })) as { version?: number };
    log.info('endpoint now serves the checkpoint', { checkpoint: fullWeights(policy).checkpoint, path: full, version: loaded.version });
    listed = await cards();
    // Another load (a concurrent publish of a different checkpoint) won the race: try again later.
    if (!baseIsRight(baseCard())) throw new ServedCheckpointChangedError(`${root} does not report ${full} right after loading it`);
  }
  if (!policy.adapterOf) {
    const fingerprint = baseCard()!.checkpoint?.fingerprint;
    return { path: full, model: model.model, ...(fingerprint ? { fingerprint } : {}) };
  }

  // 2. The adapter, under its versioned name; then this role's earlier versions go.
  const name = adapterName(policy.checkpoint);
  const path = await realpath(policy.dir);
  let card = listed.find((m) => m.id === name);
  if (card && pathOf(card) !== path) {
    await call('POST', '/v1/unload_lora_adapter', { lora_name: name });
    card = undefined;
  }
  if (!card) {
    await call('POST', '/v1/load_lora_adapter', { lora_name: name, lora_path: path });
    log.info('endpoint now serves the adapter', { checkpoint: policy.checkpoint, name, path });
    listed = await cards();
    card = listed.find((m) => m.id === name && pathOf(m) === path);
    if (!card) throw new ServedCheckpointChangedError(`${root} does not list adapter ${name} (${path}) right after loading it`);
  }
  const family = name.replace(/-it\d+$/, '-it');
  for (const old of listed) {
    if (old.id && old.id !== name && old.id.startsWith(family) && /-it\d+$/.test(old.id)) {
      await call('POST', '/v1/unload_lora_adapter', { lora_name: old.id }).catch((err: unknown) => {
        // Another publish of this role may have unloaded it first; a leftover adapter costs only memory.
        log.warn('could not unload an earlier adapter', { name: old.id, error: String(err) });
      });
    }
  }
  const fingerprint = card.checkpoint?.fingerprint;
  return { path, model: name, ...(fingerprint ? { fingerprint } : {}) };
}

/** Throws when a completion came from other weights than those `ensureServed` saw. */
export function assertSameWeights(served: Served | undefined, fingerprint: string | undefined, where: string): void {
  if (!served?.fingerprint || fingerprint === served.fingerprint) return;
  throw new ServedCheckpointChangedError(
    `${where}: the endpoint answered from weights '${fingerprint ?? 'unknown'}' while '${served.fingerprint}' (${served.path}) was published; it restarted or reloaded during the stage`,
  );
}
