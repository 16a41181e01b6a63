import { activityInfo } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { AddIterationsInput, TrainingProgress } from '../workflows/contract.js';
import { taskQueues } from '../workflows/contract.js';
import { addIterationsUpdate } from '../workflows/run-control.js';
import { codeA1Training } from '../workflows/training.js';
import { runIdAttribute } from '../workflows/search-attributes.js';

/**
 * `addIterations`: Update-with-Start of the run's training workflow. A running workflow
 * `<runId>` gets the Update (conflict policy USE_EXISTING); otherwise one starts, aiming for the
 * iterations completed so far (moreIterations 0), and the Update raises that by N. The Update ID
 * is the calling workflow's ID, so a retry of this activity after the Update landed is answered by
 * the server from the first one instead of adding N twice.
 */
export function createRunControlActivities({ client }: { client: () => Promise<Client> }) {
  return {
    async addIterations({ runId, config, moreIterations }: AddIterationsInput): Promise<TrainingProgress> {
      const start = new WithStartWorkflowOperation(codeA1Training, {
        workflowId: runId,
        taskQueue: taskQueues.orchestration,
        args: [{ config, moreIterations: 0 }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: [{ key: runIdAttribute, value: runId }],
      });
      return (await client()).workflow.executeUpdateWithStart(addIterationsUpdate, {
        args: [moreIterations],
        updateId: `add-iterations/${activityInfo().workflowExecution?.workflowId ?? activityInfo().activityId}`,
        startWorkflowOperation: start,
      });
    },
  };
}
