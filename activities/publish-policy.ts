import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from './deps.js';
import { materialise, resolveCheckpointRef } from './trainer/index.js';
import { ModelConfigError } from './llm/errors.js';
import type { PublishPolicyInput } from '../workflows/contract.js';

/** The endpoint is unreachable or failed (5xx): retried, the server may be starting or restarting. */
export class ModelServerError extends Error {
  override name = 'ModelServerError';
}

export interface PublishPolicyDeps extends StorageDeps {
  /** Where checkpoints from S3 are downloaded to; the model server must read the same disk. */
  workDir: string;
  /** Where `model:<name>` checkpoints are installed. */
  modelsDir: string;
  /** The worker environment, for the API key a model endpoint names in `apiKeyEnv`. */
  secrets?: Readonly<Record<string, string | undefined>>;
}

interface ServedModel {
  id?: string;
  root?: string;
  checkpoint?: { path?: string };
}

/**
 * Stage `publishPolicy`: makes a role's endpoint serve `checkpoint` (a local directory or a
 * finished checkpoint in object storage), through the embedded server's
 * `POST /v1/load_checkpoint {"path"}` (python/model_server.py). The checkpoint is materialised on
 * this worker's disk first, so the server must run on the same machine as the llm worker. A no-op
 * when `GET /v1/models` already reports that directory. vLLM has no such endpoint: see
 * docs/trainer-contract.md, "Publishing to vLLM"; it answers 404, which fails as ModelConfigError.
 */
export function createPublishPolicyActivity(deps: PublishPolicyDeps) {
  return {
    async publishPolicy(input: PublishPolicyInput): Promise<void> {
      const local = await materialise(resolveCheckpointRef(input.checkpoint, deps.modelsDir), deps.openStore, join(deps.workDir, 'checkpoints'), (done, total) =>
        heartbeat({ phase: 'download', done, total }),
      );
      // The server reports the path it resolved; compare like with like.
      const path = await realpath(local.dir);
      const root = input.model.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
      const apiKey = input.model.apiKeyEnv ? deps.secrets?.[input.model.apiKeyEnv] : undefined;
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

      const listed = (await call('GET', '/v1/models')) as { data?: ServedModel[] };
      const served = (listed.data ?? []).filter((m) => m.id === input.model.model).map((m) => m.checkpoint?.path ?? m.root);
      if (served.includes(path)) {
        log.info('endpoint already serves the checkpoint', { role: input.role, checkpoint: input.checkpoint, path });
        return;
      }
      const loaded = (await call('POST', '/v1/load_checkpoint', { path })) as { version?: number };
      log.info('endpoint now serves the checkpoint', { role: input.role, checkpoint: input.checkpoint, path, version: loaded.version });
    },
  };
}
