import { log } from '@temporalio/activity';
import type { ModelEndpoint } from '../../config/run-config.js';
import { replicasOf } from '../../config/run-config.js';
import type { StorageDeps } from '../deps.js';
import type { ChatClientOptions } from './chat-client.js';
import { backendFor } from './backends/index.js';
import { ChatClient } from './chat-client.js';
import { ModelConfigError, ModelUnavailableError } from './errors.js';
import { ModelServerError } from './server-api.js';
import type { Served } from './served-checkpoint.js';

/** What the generation activities need beyond storage; tests inject `fetch` and the secrets. */
export interface GenerationDeps extends StorageDeps {
  fetch?: typeof fetch;
  /** Worker environment holding the API keys that run configs name by `apiKeyEnv`. */
  secrets?: Readonly<Record<string, string | undefined>>;
  client?: Pick<ChatClientOptions, 'timeoutMs' | 'maxAttempts' | 'initialDelayMs' | 'maxDelayMs' | 'returnTokenIds'>;
  /** Problems per stored shard: the unit of resume. */
  problemsPerShard?: { code?: number; tests?: number };
  heartbeatMs?: number;
  /**
   * Makes the endpoint serve the stage's checkpoint before it samples (the llm worker passes
   * ensureServed from served-checkpoint.ts); every completion is then checked to come from it.
   */
  ensureServed?: (model: ModelEndpoint, checkpoint: string, replica: number) => Promise<Served>;
}

/** One server of a role, ready to sample from the stage's checkpoint. */
export interface ReplicaClient {
  baseUrl: string;
  client: ChatClient;
  served?: Served;
  /** Failed a request after the client's own retries: later requests of this attempt go elsewhere. */
  down?: boolean;
}

/** The infrastructure failures another replica can answer for; anything else is the request's own fault. */
const replicaFailure = (err: unknown) => err instanceof ModelUnavailableError || err instanceof ModelServerError;

/**
 * Runs one request on the replicas, starting with replica `start` (requests are spread by
 * problem): a replica that fails after the client's retries is marked down and the request moves
 * to the next one, so one slow or dead server does not stall the stage. Down replicas are tried
 * last. Throws the last failure when every replica failed (the activity is then retried).
 */
export async function onReplicas<T>(replicas: ReplicaClient[], start: number, run: (replica: ReplicaClient) => Promise<T>): Promise<T> {
  const order = replicas.map((_, i) => replicas[(start + i) % replicas.length]!);
  let last: unknown;
  for (const replica of [...order.filter((r) => !r.down), ...order.filter((r) => r.down)]) {
    try {
      return await run(replica);
    } catch (err) {
      if (!replicaFailure(err) || replicas.length === 1) throw err;
      if (!replica.down) log.warn('replica failed; its requests move to the others', { baseUrl: replica.baseUrl, error: String(err) });
      replica.down = true;
      last = err;
    }
  }
  throw last;
}

/**
 * A client per replica of the role (`baseUrl`, then `replicas`), each made to serve `checkpoint`
 * first when the worker can (deps.ensureServed). Stages spread their requests over them by
 * problem, so a retried request goes to the same server.
 */
export async function replicaClients(deps: GenerationDeps, model: ModelEndpoint, checkpoint: string, role: 'code' | 'test'): Promise<ReplicaClient[]> {
  const settled = await Promise.allSettled(
    replicasOf(model).map(async ({ baseUrl }, index): Promise<ReplicaClient> => {
      const served = await deps.ensureServed?.(model, checkpoint, index);
      return { baseUrl, client: endpointClient(deps, { ...model, baseUrl }, role, served?.model), ...(served ? { served } : {}) };
    }),
  );
  // An unreachable replica sits this stage out while another can serve; any other failure (a
  // replica serving other weights, a configuration error) stops the stage.
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  const ready = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const fatal = failed.find((err) => !replicaFailure(err));
  if (fatal !== undefined || ready.length === 0) throw fatal ?? failed[0];
  for (const err of failed) log.warn('replica unreachable; the stage samples from the others', { role, error: String(err) });
  return ready;
}

/**
 * A client for one role's endpoint; keys come from the worker's environment, never from history.
 * Requests select `served` (a LoRA adapter's versioned name) when given, else the endpoint's
 * model, in the server's own way (activities/llm/backends).
 */
export function endpointClient(deps: GenerationDeps, model: ModelEndpoint, role: 'code' | 'test', served?: string): ChatClient {
  let apiKey: string | undefined;
  if (model.apiKeyEnv !== undefined) {
    apiKey = deps.secrets?.[model.apiKeyEnv];
    if (!apiKey) throw new ModelConfigError(`models.${role}.apiKeyEnv names ${model.apiKeyEnv}, which is not set in this worker's environment`);
  }
  return new ChatClient({
    baseUrl: model.baseUrl,
    model: served ?? model.model,
    base: model.model,
    dialect: backendFor(model.server),
    ...(apiKey ? { apiKey } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...deps.client,
    onRetry: (info) => log.warn('model request retried', { role, baseUrl: model.baseUrl, ...info }),
  });
}
