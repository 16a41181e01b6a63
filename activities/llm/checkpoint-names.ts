import { createHash } from 'node:crypto';

/**
 * How a checkpoint is named on a server, so that the name of every request and rollout says
 * which weights answered: LoRA adapters are served as `<role>-<runId>-it<n>` (a new name per
 * version, as vLLM's runtime LoRA API expects), full weights are labelled `<runId>-<role>-it<n>`
 * where the server keeps a weight version (SGLang, vLLM from 0.34).
 */

/** Run, role and iteration of a checkpoint updatePolicy wrote (`…/runs/<run>/checkpoints/<role>/iter-<n>`). */
export function checkpointIdentity(checkpoint: string): { runId: string; role: string; iteration: number } | undefined {
  const m = /\/runs\/([^/]+)\/checkpoints\/(code|test)\/iter-(\d+)\/?$/.exec(checkpoint);
  return m ? { runId: m[1]!, role: m[2]!, iteration: Number(m[3]) } : undefined;
}

/** A short stable name for any other checkpoint reference. */
export const checkpointDigest = (checkpoint: string) => createHash('sha256').update(checkpoint).digest('hex').slice(0, 16);

/** The served name of a LoRA adapter. */
export function adapterName(checkpoint: string): string {
  const id = checkpointIdentity(checkpoint);
  return id ? `${id.role}-${id.runId}-it${id.iteration}` : `lora-${checkpointDigest(checkpoint)}`;
}

/** The weight version a server is told for full weights. */
export function weightVersion(checkpoint: string): string {
  const id = checkpointIdentity(checkpoint);
  return id ? `${id.runId}-${id.role}-it${id.iteration}` : `ckpt-${checkpointDigest(checkpoint)}`;
}

/** Whether `name` is an earlier version of the adapter family `current` belongs to. */
export function isEarlierAdapter(name: string, current: string): boolean {
  return name !== current && /-it\d+$/.test(name) && name.startsWith(current.replace(/-it\d+$/, '-it'));
}
