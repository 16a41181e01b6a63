/**
 * Records the histories the replay test checks every workflow change against. Run it against the
 * test stack before a change to workflow logic (then guard the change with `patched()`):
 *   node --import tsx test/histories/record.ts <name>     e.g. v1 → iteration-v1.json, training-v1.json
 * (TEMPORAL_ADDRESS, CODE_A1_TEST_S3_ENDPOINT as for the tests).
 */
import { writeFile } from 'node:fs/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { codeA1Iteration } from '../../workflows/iteration.js';
import { codeA1Training } from '../../workflows/training.js';
import { taskQueues } from '../../workflows/contract.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { rawConfig, tempDir, testConfig } from '../support/config.js';
import { recordingStages } from '../support/recording-stages.js';

const name = process.argv[2];
if (!name) throw new Error('usage: record.ts <name>');
const dir = await tempDir();
// Iteration 0's batch scores no group with variance, so the histories hold an extra sampling round.
await writeFile(`${dir}/no-signal.0.0`, '');
const { client, close } = await connectClient();
try {
  await withWorker(recordingStages({ journal: `${dir}/journal`, gateDir: dir }), async () => {
    const config = testConfig(`${dir}/store`);
    const iteration = await client.workflow.start(codeA1Iteration, {
      taskQueue: taskQueues.orchestration,
      workflowId: `${config.runId}/iter-0`,
      args: [{ config, iteration: 0, previous: null }],
    });
    await iteration.result();
    const training = await client.workflow.start(codeA1Training, {
      taskQueue: taskQueues.orchestration,
      workflowId: `${config.runId}-training`,
      args: [{ config: rawConfig(`${dir}/store2`, { iterations: 2 }) }],
    });
    await training.result();
    for (const [kind, handle] of [['iteration', iteration], ['training', training]] as const) {
      const history = await handle.fetchHistory();
      await writeFile(new URL(`./${kind}-${name}.json`, import.meta.url), historyToJSON(history));
    }
  });
} finally {
  await close();
}
