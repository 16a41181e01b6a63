import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from '../deps.js';
import { materialise, resolveCheckpointRef } from '../trainer/index.js';
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
}

interface ServedModel {
  id?: string;
  root?: string;
  checkpoint?: { path?: string; fingerprint?: string };
}

/**
 * Makes `model`'s endpoint serve `checkpoint` (a local directory, `model:<name>`, or a finished
 * checkpoint in object storage) through the embedded server's `POST /v1/load_checkpoint {"path"}`
 * (python/model_server.py); a no-op when `GET /v1/models` already reports that directory. The
 * checkpoint is materialised on this worker's disk first, so the server must run on the same
 * machine. vLLM has no such endpoint: see docs/trainer-contract.md, "Publishing to vLLM"; it
 * answers 404, which fails as ModelConfigError.
 */
export async function ensureServed(deps: ServingDeps, model: ModelEndpoint, checkpoint: string): Promise<Served> {
  const local = await materialise(resolveCheckpointRef(checkpoint, deps.modelsDir), deps.openStore, join(deps.workDir, 'checkpoints'), (done, total) =>
    heartbeat({ phase: 'download', done, total }),
  );
  // The server reports the path it resolved; compare like with like.
  const path = await realpath(local.dir);
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
      return JSON.parse(text) as unknown;
    } finally {
      clearInterval(beat);
    }
  };
  const served = async (): Promise<ServedModel | undefined> => {
    const listed = (await call('GET', '/v1/models')) as { data?: ServedModel[] };
    return (listed.data ?? []).find((m) => m.id === model.model && (m.checkpoint?.path ?? m.root) === path);
  };

  let card = await served();
  if (!card) {
    const loaded = (await call('POST', '/v1/load_checkpoint', { path })) as { version?: number };
    log.info('endpoint now serves the checkpoint', { checkpoint, path, version: loaded.version });
    card = await served();
    // Another load (a concurrent publish of a different checkpoint) won the race: try again later.
    if (!card) throw new ServedCheckpointChangedError(`${root} does not report ${path} right after loading it`);
  }
  const fingerprint = card.checkpoint?.fingerprint;
  return fingerprint ? { path, fingerprint } : { path };
}

/** Throws when a completion came from other weights than those `ensureServed` saw. */
export function assertSameWeights(served: Served | undefined, fingerprint: string | undefined, where: string): void {
  if (!served?.fingerprint || fingerprint === served.fingerprint) return;
  throw new ServedCheckpointChangedError(
    `${where}: the endpoint answered from weights '${fingerprint ?? 'unknown'}' while '${served.fingerprint}' (${served.path}) was published; it restarted or reloaded during the stage`,
  );
}
