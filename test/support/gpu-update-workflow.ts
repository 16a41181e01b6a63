/**
 * A workflow of the policy-update retry tests: one updatePolicy call on a GPU queue of the test's
 * own (so that no other test's worker takes it), with a short heartbeat timeout so that a killed
 * worker's attempt is retried within seconds.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createUpdatePolicyActivity } from '../../activities/update-policy.js';
import { nonRetryableErrorTypes } from '../../workflows/contract.js';
import type { PolicyCheckpoint, UpdatePolicyInput } from '../../workflows/contract.js';

export interface UpdatePolicyOnceInput {
  update: UpdatePolicyInput;
  taskQueue: string;
  heartbeatSeconds: number;
  maximumAttempts: number;
}

export async function updatePolicyOnce({ update, taskQueue, heartbeatSeconds, maximumAttempts }: UpdatePolicyOnceInput): Promise<PolicyCheckpoint> {
  const { updatePolicy } = proxyActivities<ReturnType<typeof createUpdatePolicyActivity>>({
    taskQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: `${heartbeatSeconds} seconds`,
    retry: { initialInterval: '1 second', maximumAttempts, nonRetryableErrorTypes },
  });
  return updatePolicy(update);
}
