import { createHash } from 'node:crypto';
import { log } from '@temporalio/activity';
import type { ServerKind } from './publish-full.js';
import { ServedCheckpointChangedError } from './served-errors.js';
import type { ServerApi } from './server-api.js';

export interface ServedModel {
  id?: string;
  root?: string;
  parent?: string | null;
  checkpoint?: { path?: string; fingerprint?: string };
}

/** `GET /v1/models`: the base model's card, then one per loaded LoRA adapter (vLLM, SGLang, embedded). */
export async function modelCards(api: ServerApi): Promise<ServedModel[]> {
  return ((await api.get('/v1/models')) as { data?: ServedModel[] }).data ?? [];
}

/** The directory a card says it serves: the embedded server's checkpoint path, else vLLM's `root`. */
export const cardPath = (card: ServedModel) => card.checkpoint?.path ?? card.root;

/**
 * The served name of an adapter: `<role>-<runId>-it<n>` for the checkpoint updatePolicy wrote
 * for that role and iteration, so the model name of every request and rollout says which
 * weights answered; a new name per version, as vLLM's runtime LoRA API expects.
 */
export function adapterName(checkpoint: string): string {
  const id = checkpointIdentity(checkpoint);
  return id ? `${id.role}-${id.runId}-it${id.iteration}` : `lora-${checkpointDigest(checkpoint)}`;
}

/** Run, role and iteration of a checkpoint updatePolicy wrote (`…/runs/<run>/checkpoints/<role>/iter-<n>`). */
export function checkpointIdentity(checkpoint: string): { runId: string; role: string; iteration: number } | undefined {
  const m = /\/runs\/([^/]+)\/checkpoints\/(code|test)\/iter-(\d+)\/?$/.exec(checkpoint);
  return m ? { runId: m[1]!, role: m[2]!, iteration: Number(m[3]) } : undefined;
}

/** A short stable name for any other checkpoint reference. */
export const checkpointDigest = (checkpoint: string) => createHash('sha256').update(checkpoint).digest('hex').slice(0, 16);

/**
 * Serves the adapter at `path` under its versioned name, then unloads this role's earlier versions
 * of the run. vLLM's routes live under `/v1` (`--enable-lora`, VLLM_ALLOW_RUNTIME_LORA_UPDATING),
 * SGLang's at the root; both take `{"lora_name", "lora_path"}`. Idempotent: an adapter already
 * listed under that name and path is left alone.
 */
export async function publishAdapter(api: ServerApi, server: ServerKind, checkpoint: string, path: string): Promise<{ name: string; card?: ServedModel }> {
  const prefix = server === 'sglang' ? '' : '/v1';
  const name = adapterName(checkpoint);
  let listed = await modelCards(api);
  let card = listed.find((m) => m.id === name);
  // A card without a path (a server that does not report one) is trusted by name; the probe checks it.
  if (card && cardPath(card) !== undefined && cardPath(card) !== path) {
    await api.post(`${prefix}/unload_lora_adapter`, { lora_name: name });
    card = undefined;
  }
  if (!card) {
    await api.post(`${prefix}/load_lora_adapter`, { lora_name: name, lora_path: path });
    log.info('endpoint now serves the adapter', { root: api.root, checkpoint, name, path });
    listed = await modelCards(api);
    card = listed.find((m) => m.id === name);
    if (!card || (cardPath(card) !== undefined && cardPath(card) !== path)) {
      throw new ServedCheckpointChangedError(`${api.root} does not list adapter ${name} (${path}) right after loading it`);
    }
  }
  const family = name.replace(/-it\d+$/, '-it');
  for (const old of listed) {
    if (old.id && old.id !== name && old.id.startsWith(family) && /-it\d+$/.test(old.id)) {
      await api.post(`${prefix}/unload_lora_adapter`, { lora_name: old.id }).catch((err: unknown) => {
        // Another publish of this role may have unloaded it first; a leftover adapter costs only memory.
        log.warn('could not unload an earlier adapter', { name: old.id, error: String(err) });
      });
    }
  }
  return { name, card };
}
