import type { ServerKind, ServingBackend } from './backend.js';
import { embedded } from './embedded.js';
import { sglang } from './sglang.js';
import { vllm } from './vllm.js';

export type { Adapter, Dialect, FullWeights, Published, ServerKind, ServingBackend } from './backend.js';

const backends: Record<ServerKind, ServingBackend> = { embedded, vllm, sglang };

/** The backend a model endpoint's `server` names (`embedded` when absent). */
export const backendFor = (kind: ServerKind | undefined): ServingBackend => backends[kind ?? 'embedded'];
