import { log } from '@temporalio/activity';
import { isEarlierAdapter } from '../checkpoint-names.js';
import { cardPath, modelCards } from '../model-cards.js';
import type { ServedModel } from '../model-cards.js';
import { ServedCheckpointChangedError } from '../served-errors.js';
import type { ServerApi } from '../server-api.js';

/**
 * Runtime LoRA loading as vLLM (`/v1/load_lora_adapter`), SGLang (`/load_lora_adapter`) and the
 * embedded server share it: `{"lora_name", "lora_path"}` to load, `{"lora_name"}` to unload.
 * Serves the adapter at `path` under `name`, then unloads this role's earlier versions.
 * Idempotent: an adapter already listed under that name and path is left alone.
 */
export async function loadAdapter(
  api: ServerApi,
  routes: { load: string; unload: string },
  name: string,
  path: string,
  load: (body: { lora_name: string; lora_path: string }) => Promise<unknown> = (body) => api.post(routes.load, body),
): Promise<ServedModel | undefined> {
  let listed = await modelCards(api);
  let card = listed.find((m) => m.id === name);
  // A card without a path (a server that does not report one) is trusted by name; the probe checks it.
  if (card && cardPath(card) !== undefined && cardPath(card) !== path) {
    await api.post(routes.unload, { lora_name: name });
    card = undefined;
  }
  if (!card) {
    await load({ lora_name: name, lora_path: path });
    log.info('endpoint now serves the adapter', { root: api.root, name, path });
    listed = await modelCards(api);
    card = listed.find((m) => m.id === name);
    if (!card || (cardPath(card) !== undefined && cardPath(card) !== path)) {
      throw new ServedCheckpointChangedError(`${api.root} does not list adapter ${name} (${path}) right after loading it`);
    }
  }
  for (const old of listed) {
    if (old.id && isEarlierAdapter(old.id, name)) {
      await api.post(routes.unload, { lora_name: old.id }).catch((err: unknown) => {
        // Another publish of this role may have unloaded it first; a leftover adapter costs only memory.
        log.warn('could not unload an earlier adapter', { name: old.id, error: String(err) });
      });
    }
  }
  return card;
}
