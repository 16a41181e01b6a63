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
