import { log } from '@temporalio/activity';
import type { ServingDeps } from './llm/served-checkpoint.js';
import { ensureServed } from './llm/served-checkpoint.js';
import type { PublishPolicyInput } from '../workflows/contract.js';

export type PublishPolicyDeps = ServingDeps;

/**
 * Stage `publishPolicy`: makes a role's endpoint serve `checkpoint` before the stages that sample
 * from it (activities/llm/served-checkpoint.ts). The generation stages check again at every
 * attempt, because a model server that restarts in between comes back with its initial weights.
 */
export function createPublishPolicyActivity(deps: PublishPolicyDeps) {
  return {
    async publishPolicy(input: PublishPolicyInput): Promise<void> {
      const served = await ensureServed(deps, input.model, input.checkpoint, input.replica ?? 0);
      log.info('endpoint serves the checkpoint', { role: input.role, checkpoint: input.checkpoint, ...served });
    },
  };
}
