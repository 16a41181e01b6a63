/**
 * A worker process as `code-a1 worker all` makes it (createWorker: error classification and, with
 * CODE_A1_METRICS_ADDRESS, the Prometheus endpoint), serving the recording stages, except that a
 * stage fails with an unclassified error (a full disk, say) while `<dir>/fail.<iteration>.<stage>`
 * exists. Every failed attempt appends a line to `<dir>/failed-attempts`.
 * Usage: node --import tsx test/support/failing-stage-worker.ts <dir>   (environment as a worker's)
 */
import { access, appendFile } from 'node:fs/promises';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { createWorker, workflowsPath } from '../../workers/connect.js';
import { taskQueues } from '../../workflows/contract.js';
import type { IterationRef } from '../../workflows/contract.js';
import { recordingStages } from './recording-stages.js';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: failing-stage-worker.ts <dir>');

type Activity = (input: IterationRef) => Promise<unknown>;
const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir }) as unknown as Record<string, Activity>;
const activities = Object.fromEntries(
  Object.entries(stages).map(([name, run]) => [
    name,
    async (input: IterationRef) => {
      const switchFile = `${dir}/fail.${input.iteration}.${name}`;
      if (await access(switchFile).then(() => true, () => false)) {
        await appendFile(`${dir}/failed-attempts`, `${input.runId} ${input.iteration} ${name}\n`);
        throw new Error(`ENOSPC: no space left on device, write '${switchFile}'`);
      }
      return run(input);
    },
  ]),
);

const env = parseWorkerEnv(process.env);
const workers = await Promise.all(
  Object.values(taskQueues).map((taskQueue) =>
    createWorker(env, { taskQueue, activities, shutdownGraceTime: '2 seconds', ...(taskQueue === taskQueues.orchestration ? { workflowsPath } : {}) }),
  ),
);
const running = Promise.all(workers.map((w) => w.run()));
console.log('ready');
await running;
