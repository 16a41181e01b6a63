import { execa } from 'execa';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { LogEntry } from '@temporalio/worker';
import { createRunStateActivities } from '../../activities/run-state.js';
import type { CurveOptions } from '../../activities/curves/index.js';
import { curvesPython } from '../../activities/curves/index.js';
import type { ObjectStore } from '../../activities/storage/index.js';
import { openStore } from '../../activities/storage/index.js';
import type { IterationRecord, RecordIterationInput } from '../../workflows/contract.js';
import { keys } from '../../workflows/contract.js';

/** Every scalar curve of a TensorBoard log dir: tag to [step, value] points, in step order. */
export type Curves = Record<string, Array<[number, number]>>;

// TensorBoard's own loader: it merges every event file of the folder, as `tensorboard --logdir` does.
const reader = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1])
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
`;

/** Reads a log dir back with tensorboard's EventAccumulator (one run: the folder's own event files). */
export async function readCurves(dir: string): Promise<Curves> {
  const { stdout } = await execa(curvesPython, ['-c', reader, dir]);
  return JSON.parse(stdout) as Curves;
}

/** An iteration's stage results as the workflow passes them to recordIteration; the code reward varies. */
export function iterationInput(storageUri: string, runId: string, iteration: number, codeReward: number): RecordIterationInput {
  return {
    runId,
    iteration,
    storageUri,
    stageResults: {
      score: { key: 'scores.json', summary: { codeRewardMean: codeReward, validTestRatio: 0.5, attackRate: 0.25 } },
      updateMistakeBook: { key: keys.mistakeBook(runId, iteration), summary: { bookTests: 3 * iteration } },
    },
    policies: [
      { role: 'code', checkpoint: `ckpt/code/${iteration}`, metrics: { loss: -0.5, kl: 0.001, grad_norm: 2 } },
      { role: 'test', checkpoint: `ckpt/test/${iteration}`, metrics: { loss: 0.25, kl: 0.002, clip_fraction: 0.125 } },
    ],
    stageDurationsMs: { generateCode: 1500 },
  };
}

/** recordIteration in an activity context whose warnings and errors land in `logs`; retries 10 ms apart. */
export function curveRecorder(deps: { openStore?: (uri: string) => ObjectStore; curves?: CurveOptions } = {}) {
  const logs: LogEntry[] = [];
  const { recordIteration } = createRunStateActivities({ openStore: deps.openStore ?? ((uri) => openStore(uri)), curves: { retryDelayMs: 10, ...deps.curves } });
  const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('WARN', (entry) => logs.push(entry)) });
  return { logs, record: (input: RecordIterationInput) => env.run(recordIteration, input) as Promise<IterationRecord> };
}
