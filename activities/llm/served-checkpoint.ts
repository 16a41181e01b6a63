import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, Context, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from '../deps.js';
import { fullWeights, loadPolicy, readPolicyFile } from '../trainer/index.js';
import { ConfigError, replicasOf } from '../../config/run-config.js';
import type { ModelEndpoint, Replica } from '../../config/run-config.js';
import { backendFor } from './backends/index.js';
import type { Dialect, FullWeights, Published } from './backends/index.js';
import { adapterName } from './checkpoint-names.js';
import { ModelConfigError } from './errors.js';
import { modelCards } from './model-cards.js';
import type { ProbeRecord, ProbeVerdict } from './probe.js';
import { PROBE_FILE, PROBE_TOLERANCE, probeFor, readProbeText, runProbe } from './probe.js';
import { ServedCheckpointChangedError } from './served-errors.js';
import type { ServerApi } from './server-api.js';
import { serverApi } from './server-api.js';
import { servingDir } from './serving-dir.js';

export { ServedCheckpointChangedError } from './served-errors.js';
export { ModelServerError } from './server-api.js';
export { adapterName } from './checkpoint-names.js';

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
  /** The directory the server was given. */
  path: string;
  /**
   * What every answer from these weights carries (Dialect.answeredBy): the embedded server's
   * per-load fingerprint, a weight version; absent when the server reports nothing to check.
   */
  label?: string;
  /** The weights requests sample from: the endpoint's model, or the versioned name of the LoRA adapter. */
  model: string;
  /** The server's base model name (`model` in the config). */
  base: string;
  /** The server's base URL (one replica of the role). */
  endpoint: string;
}

/** The replica of `model` numbered `index` (0 = `baseUrl`). */
export function replicaOf(model: ModelEndpoint, index: number): Replica {
  const replica = replicasOf(model)[index];
  if (!replica) throw new ConfigError(`the model endpoint ${model.baseUrl} has no replica ${index}`);
  return replica;
}

export function adminApi(deps: Pick<ServingDeps, 'secrets'>, model: ModelEndpoint, baseUrl: string): ServerApi {
  let apiKey: string | undefined;
  if (model.apiKeyEnv) {
    apiKey = deps.secrets?.[model.apiKeyEnv];
    if (!apiKey) throw new ModelConfigError(`apiKeyEnv names ${model.apiKeyEnv}, which is not set in this worker's environment`);
  }
  return serverApi(baseUrl, apiKey);
}

/**
 * Makes replica `replica` of `model` serve `checkpoint` (a local directory, `model:<name>`, or a
 * finished checkpoint in object storage), with the checkpoint's files materialised on this
 * worker's disk first: the server must run on the same machine (a publish worker beside each
 * inference server, `host` in the config). The server gets a directory of only what it loads
 * (serving-dir.ts); how it loads it depends on the server (activities/llm/backends). Then, when
 * the checkpoint carries a probe (every checkpoint the built-in trainer writes), the endpoint's
 * greedy log-probs must match it: a reload that answered 200 and kept the old weights fails here,
 * retryably.
 */
export async function ensureServed(deps: ServingDeps, model: ModelEndpoint, checkpoint: string, replica = 0): Promise<Served> {
  const { baseUrl } = replicaOf(model, replica);
  const policy = await loadPolicy(checkpoint, {
    openStore: deps.openStore,
    modelsDir: deps.modelsDir,
    cacheDir: join(deps.workDir, 'checkpoints'),
    onFile: (done, total) => heartbeat({ phase: 'download', done, total }),
  });
  const api = adminApi(deps, model, baseUrl);
  const backend = backendFor(model.server);
  const probe = probeFor(policy.checkpoint, await readProbeText(policy.dir), policy.manifest?.trained === true, model.probe, unverified(baseUrl));
  // Servers report the path they resolved; compare like with like.
  const servable = async (dir: string) => realpath(await servingDir(await realpath(dir), deps.workDir));
  const base = fullWeights(policy);
  const initial = base.checkpoint === model.checkpoint;
  const weights: FullWeights = { model: model.model, checkpoint: base.checkpoint, dir: await servable(base.dir), initial };

  const adapterDir = policy.adapterOf ? await servable(policy.dir) : undefined;
  let published: Published;
  if (adapterDir !== undefined) {
    // vLLM and SGLang serve the base they were started with (docs/trainer-contract.md); only the
    // embedded server can be asked to load another one.
    published = await backend.publishAdapter(api, { model: model.model, checkpoint: policy.checkpoint, dir: adapterDir, base: weights });
  } else {
    // The resolved checkpoint decides: an iteration that trained nothing is an alias of its base,
    // which for the first iterations of a run is the initial model the server was started on.
    published = await backend.publishFull(api, { ...weights, ...(probe ? { probe } : {}) });
  }
  const served: Served = {
    path: adapterDir ?? weights.dir,
    model: published.weights,
    base: model.model,
    endpoint: baseUrl,
    ...(published.label !== undefined ? { label: published.label } : {}),
  };
  if (probe) await checkProbe(api, backend, served, probe, policy.checkpoint, published.verdict);
  else log.info('the checkpoint carries no probe; the served weights are trusted', { checkpoint: policy.checkpoint, endpoint: baseUrl });
  return served;
}

/** Warns, and counts on the worker's metrics, a publish that goes on without a probe (`probe: "warn"`). */
function unverified(endpoint: string): (why: string) => void {
  return (why) => {
    log.warn('publishing without a probe: the served weights are not verified', { endpoint, why });
    Context.current()
      .metricMeter.createCounter('code_a1_unverified_publishes', '1', 'Publishes of a trained checkpoint without a valid probe (probe: warn)')
      .add(1, { endpoint });
  };
}

/** Fails (retryably) unless the endpoint's greedy log-probs are those the trainer recorded. */
export async function checkProbe(api: ServerApi, dialect: Dialect, served: Served, probe: ProbeRecord, checkpoint: string, known?: ProbeVerdict): Promise<void> {
  const verdict = known ?? (await runProbe(api, dialect, served.model, served.base, probe));
  const figures = { endpoint: served.endpoint, model: served.model, checkpoint, meanAbsLogprob: verdict.meanAbs, tolerance: PROBE_TOLERANCE };
  if (!verdict.ok) {
    throw new ServedCheckpointChangedError(
      `${served.endpoint} (${served.model}) does not serve ${checkpoint}: its greedy log-probs differ from the trainer's by ` +
        `${verdict.meanAbs.toFixed(4)} nats/token (tolerance ${PROBE_TOLERANCE})` +
        (verdict.servesPrevious ? '; they match the weights before this update, so the reload kept the old weights' : ''),
    );
  }
  if (!verdict.distinguishable && probe.previous) log.warn('the probe cannot tell this update from the previous weights', figures);
  else log.info('the probe confirms the served weights', figures);
}

/** The error type a generation stage fails with when a remote replica needs publishing again (workflows/iteration.ts). */
export const replicaNeedsPublish = 'ReplicaNeedsPublishError';

/**
 * For a replica on another host (`host` set), which this worker cannot publish to: checks without
 * downloading weights that it serves `checkpoint` (the adapter's versioned name is listed; the
 * probe matches). Otherwise the stage fails, non-retryably, with `ReplicaNeedsPublishError`: the
 * iteration workflow then publishes again through the host's publish worker and reruns the stage,
 * which keeps the shards it stored.
 */
export async function verifyServed(deps: ServingDeps, model: ModelEndpoint, checkpoint: string, replica: number): Promise<Served> {
  const { baseUrl } = replicaOf(model, replica);
  const file = await readPolicyFile(checkpoint, PROBE_FILE, deps);
  const name = file.adapter ? adapterName(file.checkpoint) : model.model;
  const served: Served = { path: file.checkpoint, model: name, base: model.model, endpoint: baseUrl };
  const api = adminApi(deps, model, baseUrl);
  const stale = (why: string) =>
    ApplicationFailure.create({ type: replicaNeedsPublish, nonRetryable: true, message: `${baseUrl} does not serve ${file.checkpoint}: ${why}` });
  if (file.adapter && !(await modelCards(api)).some((m) => m.id === name)) throw stale(`adapter ${name} is not loaded`);
  const probe = probeFor(file.checkpoint, file.text, file.trained, model.probe, unverified(baseUrl));
  if (probe) {
    const verdict = await runProbe(api, backendFor(model.server), name, model.model, probe);
    if (!verdict.ok) throw stale(`the probe differs by ${verdict.meanAbs.toFixed(4)} nats/token`);
  }
  return served;
}

/**
 * Throws when a completion came from other weights than those `ensureServed` saw. An answer
 * without a label (a release that reports none) cannot be checked here; the probe covers it.
 */
export function assertSameWeights(served: Served | undefined, label: string | undefined, where: string): void {
  if (served?.label === undefined || label === undefined || label === served.label) return;
  throw new ServedCheckpointChangedError(
    `${where}: the endpoint answered from weights '${label}' while '${served.label}' (${served.path}) was published; it restarted or reloaded during the stage`,
  );
}
