import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from '../deps.js';
import { fullWeights, loadPolicy, readPolicyFile } from '../trainer/index.js';
import { ConfigError, replicasOf } from '../../config/run-config.js';
import type { ModelEndpoint, Replica } from '../../config/run-config.js';
import { ModelConfigError } from './errors.js';
import type { ProbeRecord } from './probe.js';
import type { ProbeVerdict } from './probe.js';
import { PROBE_FILE, PROBE_TOLERANCE, parseProbe, readProbe, runProbe } from './probe.js';
import { adapterName, modelCards, publishAdapter } from './publish-adapter.js';
import type { FullPublish } from './publish-full.js';
import { publishEmbedded, publishSglangFull, publishVllmFull } from './publish-full.js';
import { ServedCheckpointChangedError } from './served-errors.js';
import type { ServerApi } from './server-api.js';
import { serverApi } from './server-api.js';

export { ServedCheckpointChangedError } from './served-errors.js';
export { ModelServerError } from './server-api.js';
export { adapterName } from './publish-adapter.js';

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
 * inference server, `host` in the config). How depends on the server (`model.server`) and on the
 * checkpoint (LoRA adapter or full weights): publish-adapter.ts and publish-full.ts. Then, when the
 * checkpoint carries a probe (every checkpoint the built-in trainer writes), the endpoint's greedy
 * log-probs must match it: a reload that answered 200 and kept the old weights fails here,
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
  // Servers report the path they resolved; compare like with like.
  const full = await realpath(fullWeights(policy).dir);
  const api = adminApi(deps, model, baseUrl);
  const probe = await readProbe(policy.dir);
  const server = model.server ?? 'embedded';

  let served: Served;
  let verdict: ProbeVerdict | undefined;
  if (policy.adapterOf) {
    // The adapter needs the right base. Only the embedded server can be asked to load another one;
    // vLLM and SGLang serve the base they were started with (docs/trainer-contract.md).
    if (server === 'embedded') await publishEmbedded(api, model.model, full);
    const path = await realpath(policy.dir);
    const { name, card } = await publishAdapter(api, server, policy.checkpoint, path);
    const fingerprint = card?.checkpoint?.fingerprint;
    served = { path, model: name, endpoint: baseUrl, ...(fingerprint ? { fingerprint } : {}) };
  } else {
    let result: FullPublish;
    if (server === 'embedded') result = await publishEmbedded(api, model.model, full);
    else if (server === 'sglang') result = await publishSglangFull(api, fullWeights(policy).checkpoint, full);
    else {
      // vLLM keeps reporting its launch path whatever it serves: only the probe can say a reload is not needed.
      const before = probe ? await runProbe(api, model.model, probe) : undefined;
      if (!probe && checkpoint === model.checkpoint) {
        // The run's initial weights: vLLM was started on them (README), and a vLLM serving LoRA
        // adapters has no dev-mode reload route to call.
        result = { loaded: false };
      } else if (before?.ok && before.distinguishable) {
        result = { loaded: false };
        verdict = before;
      } else result = await publishVllmFull(api, full);
    }
    served = { path: full, model: model.model, endpoint: baseUrl, ...(result.fingerprint ? { fingerprint: result.fingerprint } : {}) };
  }
  if (probe) await checkProbe(api, served, probe, policy.checkpoint, verdict);
  else log.info('the checkpoint carries no probe; the served weights are trusted', { checkpoint: policy.checkpoint, endpoint: baseUrl });
  return served;
}

/** Fails (retryably) unless the endpoint's greedy log-probs are those the trainer recorded. */
export async function checkProbe(api: ServerApi, served: Served, probe: ProbeRecord, checkpoint: string, known?: ProbeVerdict): Promise<void> {
  const verdict = known ?? (await runProbe(api, served.model, probe));
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
  const served: Served = { path: file.checkpoint, model: name, endpoint: baseUrl };
  const api = adminApi(deps, model, baseUrl);
  const stale = (why: string) =>
    ApplicationFailure.create({ type: replicaNeedsPublish, nonRetryable: true, message: `${baseUrl} does not serve ${file.checkpoint}: ${why}` });
  if (file.adapter && !(await modelCards(api)).some((m) => m.id === name)) throw stale(`adapter ${name} is not loaded`);
  const probe = file.text === undefined ? undefined : parseProbe(file.text);
  if (probe) {
    const verdict = await runProbe(api, name, probe);
    if (!verdict.ok) throw stale(`the probe differs by ${verdict.meanAbs.toFixed(4)} nats/token`);
  }
  return served;
}

/** Throws when a completion came from other weights than those `ensureServed` saw. */
export function assertSameWeights(served: Served | undefined, fingerprint: string | undefined, where: string): void {
  if (!served?.fingerprint || fingerprint === served.fingerprint) return;
  throw new ServedCheckpointChangedError(
    `${where}: the endpoint answered from weights '${fingerprint ?? 'unknown'}' while '${served.fingerprint}' (${served.path}) was published; it restarted or reloaded during the stage`,
  );
}
