import { execa } from 'execa';
import { curvesPython } from '../../activities/curves/index.js';

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
