import { log } from '@temporalio/activity';
import type { ModelEndpoint } from '../../config/run-config.js';
import { replicasOf } from '../../config/run-config.js';
import type { StorageDeps } from '../deps.js';
import type { ChatClientOptions } from './chat-client.js';
import { ChatClient } from './chat-client.js';
import { ModelConfigError } from './errors.js';
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
}

/**
 * A client per replica of the role (`baseUrl`, then `replicas`), each made to serve `checkpoint`
 * first when the worker can (deps.ensureServed). Stages spread their requests over them by
 * problem, so a retried request goes to the same server.
 */
export async function replicaClients(deps: GenerationDeps, model: ModelEndpoint, checkpoint: string, role: 'code' | 'test'): Promise<ReplicaClient[]> {
  return Promise.all(
    replicasOf(model).map(async ({ baseUrl }, index) => {
      const served = await deps.ensureServed?.(model, checkpoint, index);
      return { baseUrl, client: endpointClient(deps, { ...model, baseUrl }, role, served?.model), ...(served ? { served } : {}) };
    }),
  );
}

/**
 * A client for one role's endpoint; keys come from the worker's environment, never from history.
 * Requests name `served` (a LoRA adapter's versioned name) when given, else the endpoint's model.
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
    ...(apiKey ? { apiKey } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...deps.client,
    onRetry: (info) => log.warn('model request retried', { role, baseUrl: model.baseUrl, ...info }),
  });
}
