import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { IterationRecord } from '../../workflows/contract.js';
import { keys } from '../../workflows/contract.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The project's virtual environment, where infra/install-python.sh installs tensorboard. */
export const curvesPython = join(repoRoot, '.venv/bin/python');
const script = join(repoRoot, 'python/tensorboard_log.py');

/** Exit statuses of python/tensorboard_log.py that no retry changes. */
const permanentExits: Record<number, string> = { 2: 'the input is not an iteration record', 3: 'the tensorboard package is not installed' };

const padded = (iteration: number) => String(iteration).padStart(8, '0');

/**
 * Where a run's curves live, beside its other artifacts. One event file per iteration at a fixed
 * name: TensorBoard merges the event files of a directory (in name order, so iterations load in
 * order), and a retried iteration overwrites its own file rather than adding a second point.
 */
export const curveKeys = {
  dir: (runId: string) => `${keys.run(runId)}/tensorboard/`,
  eventFile: (runId: string, iteration: number) => `${keys.run(runId)}/tensorboard/${eventFileName(iteration)}`,
  /** A note that an iteration has no stored curves, and why; outside the event folder, which TensorBoard reads. */
  failure: (runId: string, iteration: number) => `${keys.run(runId)}/tensorboard-failed/${padded(iteration)}.json`,
  failures: (runId: string) => `${keys.run(runId)}/tensorboard-failed/`,
};

/** TensorBoard takes any file whose name contains `tfevents` as an event file. */
export function eventFileName(iteration: number): string {
  return `events.out.tfevents.${padded(iteration)}.code-a1`;
}

/** The iteration an event file's name stands for, or undefined for any other file. */
export function iterationOfEventFile(name: string): number | undefined {
  const match = /^events\.out\.tfevents\.(\d{8,})\.code-a1$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** The curve writer failed; `permanent` when retrying cannot help (bad input, no library, no interpreter). */
export class CurveWriterError extends Error {
  override name = 'CurveWriterError';
  constructor(
    message: string,
    readonly permanent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface EventFileOptions {
  /** The interpreter that has tensorboard; default the project's .venv. */
  python?: string;
  /** One run of the writer; it takes about half a second, most of it importing tensorboard. */
  timeoutMs?: number;
}

/** Writes `record`'s metrics as one event file at `path` with python/tensorboard_log.py, replacing any file there. */
export async function renderEventFile(record: IterationRecord, path: string, { python = curvesPython, timeoutMs = 60_000 }: EventFileOptions = {}): Promise<void> {
  const result = await execa(python, [script, '--out', path], { input: JSON.stringify(record), reject: false, timeout: timeoutMs });
  if (result.exitCode === 0) return;
  const stderr = String(result.stderr ?? '').trim().slice(-2_000);
  if (result.timedOut) throw new CurveWriterError(`the curve writer did not finish within ${timeoutMs} ms`, false);
  // No exit status and no signal: it never started (no interpreter at that path).
  if (result.exitCode === undefined && !result.signal) {
    const why = result.cause instanceof Error ? result.cause.message : result.shortMessage;
    throw new CurveWriterError(`cannot run ${python}: ${why}`, true, { cause: result.cause });
  }
  const known = result.exitCode === undefined ? undefined : permanentExits[result.exitCode];
  if (known) throw new CurveWriterError(`${known}: ${stderr}`, true);
  const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
  throw new CurveWriterError(`the curve writer ${how}: ${stderr}`, false);
}
