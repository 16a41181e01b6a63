import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectStore } from '../storage/index.js';
import { ConfigError } from '../../config/run-config.js';
import { InvalidArtifactError } from '../artifact-errors.js';
import type { CheckpointManifest } from './layout.js';
import { readManifest } from './layout.js';
import { ensureModelInstalled } from './install-model.js';
import { isStoreUri, materialise, resolveCheckpointRef } from './materialise.js';

export interface PolicyOptions {
  openStore: (uri: string) => ObjectStore;
  /** Where `model:<name>` checkpoints are installed. */
  modelsDir: string;
  /** Where checkpoints from S3 are downloaded to. */
  cacheDir: string;
  onFile?: (done: number, total: number) => void;
}

/** A policy's weights on this machine's disk. */
export interface Policy {
  /** The checkpoint whose files these are, after following aliases (what a served name derives from). */
  checkpoint: string;
  /** Its local directory: the full weights, or the adapter. */
  dir: string;
  manifest?: CheckpointManifest;
  /** Present for a LoRA adapter: the full-weight model it applies to. */
  adapterOf?: { checkpoint: string; dir: string };
}

/** An alias names a finished checkpoint, which is never an alias itself; a few hops allow for old data. */
const maxAliasHops = 4;

/**
 * Resolves a checkpoint reference (`model:<name>`, a directory, or a store prefix from
 * updatePolicy) to local files: follows the alias an untrained iteration leaves, downloads what
 * is in S3, and for a LoRA adapter also the model it applies to.
 */
export async function loadPolicy(ref: string, opts: PolicyOptions): Promise<Policy> {
  const { checkpoint } = await resolveAlias(ref, opts.openStore);
  const model = /^model:(.+)$/.exec(checkpoint)?.[1];
  const local = await materialise(resolveCheckpointRef(checkpoint, opts.modelsDir), opts.openStore, opts.cacheDir, opts.onFile).catch(async (err: unknown) => {
    // A model this worker has not installed yet: install it, then use it.
    if (model === undefined || !(err instanceof ConfigError)) throw err;
    await ensureModelInstalled(model, opts.modelsDir);
    return materialise(resolveCheckpointRef(checkpoint, opts.modelsDir), opts.openStore, opts.cacheDir, opts.onFile);
  });
  const policy: Policy = { checkpoint, dir: local.dir, ...(local.manifest ? { manifest: local.manifest } : {}) };
  const adapterBase = local.manifest?.adapter?.model;
  if (adapterBase === undefined) return policy;
  const base = await loadPolicy(adapterBase, opts);
  if (base.adapterOf) throw new InvalidArtifactError(`${checkpoint}: its base ${adapterBase} is itself an adapter`);
  return { ...policy, adapterOf: { checkpoint: base.checkpoint, dir: base.dir } };
}

/** The checkpoint an alias chain ends at, and its manifest when it lives in object storage. */
async function resolveAlias(ref: string, openStore: PolicyOptions['openStore']): Promise<{ checkpoint: string; manifest?: CheckpointManifest }> {
  let checkpoint = ref;
  for (let hop = 0; isStoreUri(checkpoint); hop++) {
    const manifest = await readManifest(openStore(checkpoint.replace(/\/+$/, '')), '');
    if (manifest?.alias === undefined) return { checkpoint, ...(manifest ? { manifest } : {}) };
    if (hop === maxAliasHops) throw new InvalidArtifactError(`${ref}: more than ${maxAliasHops} checkpoint aliases in a row`);
    checkpoint = manifest.alias;
  }
  return { checkpoint };
}

/**
 * Reads one small file of a checkpoint without downloading the rest (the probe a generation
 * worker checks a remote server against): undefined when the checkpoint has no such file.
 * `trained`: a trainer wrote it (its manifest says so), unlike a model it started from.
 */
export async function readPolicyFile(
  ref: string,
  file: string,
  opts: Pick<PolicyOptions, 'openStore' | 'modelsDir'>,
): Promise<{ checkpoint: string; adapter: boolean; trained: boolean; text?: string }> {
  const { checkpoint, manifest } = await resolveAlias(ref, opts.openStore);
  if (!isStoreUri(checkpoint)) {
    const dir = resolveCheckpointRef(checkpoint, opts.modelsDir);
    const text = await readFile(join(dir, file), 'utf8').catch(() => undefined);
    const adapter = await stat(join(dir, 'adapter_config.json')).then(() => true, () => false);
    return { checkpoint, adapter, trained: false, ...(text === undefined ? {} : { text }) };
  }
  if (!manifest) throw new InvalidArtifactError(`${checkpoint}: no manifest (an unfinished checkpoint)`);
  const bytes = manifest.files.some((f) => f.path === file)
    ? await opts.openStore(checkpoint.replace(/\/+$/, '')).get(`${manifest.dir}/${file}`)
    : undefined;
  return { checkpoint, adapter: manifest.adapter !== undefined, trained: manifest.trained, ...(bytes ? { text: Buffer.from(bytes).toString('utf8') } : {}) };
}

/** The full-weight model a policy runs on: the adapter's base, or the policy itself. */
export function fullWeights(policy: Policy): { checkpoint: string; dir: string } {
  return policy.adapterOf ?? { checkpoint: policy.checkpoint, dir: policy.dir };
}

/** Refuses to continue a LoRA adapter with full-parameter training (or the reverse), which would silently change the method. */
export function assertTrainable(policy: Policy, lora: boolean, ref: string): void {
  if (policy.adapterOf && !lora) {
    throw new ConfigError(`checkpoint ${ref} is a LoRA adapter: set trainer.lora to continue it, or start from a full checkpoint`);
  }
}
