import type { ProbeRecord, ProbeVerdict } from '../probe.js';
import type { ServerApi } from '../server-api.js';

export type ServerKind = 'embedded' | 'vllm' | 'sglang';

/**
 * How requests talk to one kind of server: which fields select the weights, which sampling fields
 * pin the distribution, and where the answer keeps token ids and the weights' label. The chat
 * client and the probe build and read every request through it.
 */
export interface Dialect {
  /** Request fields that make a server whose base model is `base` answer from `weights` (the base or an adapter's served name). */
  select(weights: string, base: string): Record<string, unknown>;
  /**
   * Sampling fields every request carries with their neutral value, so that no server default
   * applies: vLLM (`--generation-config auto`) and SGLang (`--sampling-defaults model`) otherwise
   * take top_k, repetition_penalty, min_p … from the checkpoint's generation_config.json, and the
   * rollouts would not come from the distribution the trainer computes ratios against.
   */
  readonly neutralSampling: Readonly<Record<string, unknown>>;
  /** Fields that ask for the completion's and the prompt's token ids. */
  readonly tokenIdFields: Readonly<Record<string, unknown>>;
  /** Fields that ask the server to say which weights answered (read back by `answeredBy`). */
  readonly labelFields: Readonly<Record<string, unknown>>;
  completionTokenIds(choice: Record<string, unknown>): unknown;
  promptTokenIds(body: Record<string, unknown>, choice: Record<string, unknown> | undefined): unknown;
  /** The label of the weights that answered, where the server reports one (undefined: it does not). */
  answeredBy(body: Record<string, unknown>, choice: Record<string, unknown> | undefined): string | undefined;
}

/** A full-weight checkpoint to publish. */
export interface FullWeights {
  /** The server's base model name (`model` in the config). */
  model: string;
  /** The checkpoint after aliases are followed: what its weight version derives from. */
  checkpoint: string;
  /** Its servable directory on this machine (serving-dir.ts). */
  dir: string;
  /** The run's initial checkpoint, which a vLLM or SGLang server is started on. */
  initial: boolean;
  probe?: ProbeRecord;
}

/** A LoRA adapter to publish on top of `base`. */
export interface Adapter {
  model: string;
  checkpoint: string;
  /** The adapter's servable directory. */
  dir: string;
  base: FullWeights;
}

export interface Published {
  /** The name of the weights in requests (the model, or the adapter's versioned name). */
  weights: string;
  /** What answers from these weights carry (`Dialect.answeredBy`); undefined when nothing can be checked. */
  label?: string;
  /** A probe the backend already ran against the served weights, so it need not run twice. */
  verdict?: ProbeVerdict;
}

/** Publishing to one kind of server; one module per backend (embedded.ts, vllm.ts, sglang.ts). */
export interface ServingBackend extends Dialect {
  readonly kind: ServerKind;
  publishFull(api: ServerApi, weights: FullWeights): Promise<Published>;
  publishAdapter(api: ServerApi, adapter: Adapter): Promise<Published>;
}
