import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { ConfigError } from '../../config/run-config.js';

/** The trainer died or failed otherwise: an infrastructure failure, retried by Temporal. */
export class TrainerFailedError extends Error {
  override name = 'TrainerFailedError';
}

/**
 * The trainer printed no new progress line for the stall limit (a hung collective, a dead GPU, a
 * deadlocked data loader) and was killed. Retried: the hang may be the host's, not the job's.
 */
export class TrainerStalledError extends Error {
  override name = 'TrainerStalledError';
}

/**
 * The trainer ran out of GPU memory. The same job on the same devices needs the same memory, so
 * a retry would fail again after loading the model: not retried, the config has to change.
 */
export class TrainerOutOfMemoryError extends Error {
  override name = 'TrainerOutOfMemoryError';
}

/** What PyTorch prints when CUDA (or ROCm) cannot allocate: `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …`. */
const OUT_OF_MEMORY = /\b(?:CUDA|HIP) out of memory\b|\bOutOfMemoryError\b|\bCUDA error: out of memory\b/;

export const JOB_REJECTED_EXIT = 65;

export interface RunTrainerOptions {
  /** argv; the job file's path is appended as the last argument. */
  command: string[];
  jobPath: string;
  cwd: string;
  env?: Record<string, string>;
  signal: AbortSignal;
  /** Each JSON object the trainer prints on its own stdout line that differs from the one before (see `progressKey`). */
  onProgress(event: Record<string, unknown>): void;
  /** Kill the trainer and fail with TrainerStalledError when no progress line arrives for this long; absent: never. */
  stallMs?: number;
  /** Seconds between SIGTERM and SIGKILL when the process group is stopped. */
  killGraceMs?: number;
}

function alive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the whole process group (the trainer and anything it started), SIGKILL after the grace. */
export async function killGroup(pgid: number, graceMs: number): Promise<void> {
  if (!alive(pgid)) return;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pgid) && Date.now() < deadline) await sleep(50);
  if (alive(pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone between the check and the kill */
    }
  }
}

/**
 * What makes a progress line new: the line without its clocks. A trainer (or a thread of it) that
 * repeats the same line, or only a later time, is not making progress.
 */
function progressKey(event: Record<string, unknown>): string {
  const { seconds: _s, elapsed: _e, time: _t, timestamp: _ts, ...rest } = event;
  return JSON.stringify(rest);
}

function minutes(ms: number): string {
  return `${Number((ms / 60_000).toPrecision(2))} min`;
}

/**
 * Runs a trainer as the leader of its own process group, so that stopping it also stops what it
 * spawned (torchrun workers, data loaders). Its stdin stays an open pipe: a trainer that sees EOF
 * knows this process died without stopping it. Resolves when it exits with status 0; the group is
 * killed on cancellation, on a stall (no new progress line for `stallMs`), on failure, and in
 * every case before returning.
 */
export async function runTrainer(o: RunTrainerOptions): Promise<void> {
  const [file, ...args] = o.command;
  if (!file) throw new ConfigError('the trainer command is empty');
  const grace = o.killGraceMs ?? 10_000;
  o.signal.throwIfAborted();
  const child = execa(file, [...args, o.jobPath], {
    cwd: o.cwd,
    env: { CODE_A1_TRAINER_JOB: o.jobPath, CODE_A1_TRAINER_STDIN_WATCH: '1', PYTHONUNBUFFERED: '1', ...o.env },
    detached: true,
    stdin: 'pipe',
    buffer: false,
    reject: false,
  });
  const pid = child.pid;
  const stop = () => {
    if (pid !== undefined) void killGroup(pid, grace);
  };

  const stderrTail: string[] = [];
  let outOfMemory: string | undefined; // the first line that says so: later ones are often a launcher's summary
  const errLines = child.stderr ? createInterface({ input: child.stderr }) : undefined;
  errLines?.on('line', (line) => {
    stderrTail.push(line);
    while (stderrTail.join('\n').length > 8_000 && stderrTail.length > 1) stderrTail.shift();
    if (outOfMemory === undefined && OUT_OF_MEMORY.test(line)) outOfMemory = line.trim().slice(0, 1_000);
  });

  let last: Record<string, unknown> | undefined;
  let lastKey: string | undefined;
  let stalled = false;
  const watchdog = o.stallMs === undefined ? undefined : setTimeout(() => ((stalled = true), stop()), o.stallMs);
  const lines = child.stdout ? createInterface({ input: child.stdout }) : undefined;
  lines?.on('line', (line) => {
    if (!line.startsWith('{')) return; // the contract allows other output; only JSON objects are progress
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // a malformed progress line is not worth failing an update over
    }
    const key = progressKey(event);
    if (key === lastKey || stalled) return;
    lastKey = key;
    last = event;
    watchdog?.refresh();
    o.onProgress(event);
  });

  o.signal.addEventListener('abort', stop, { once: true });
  if (o.signal.aborted) stop(); // aborted while spawning: the listener came too late to hear it
  try {
    const result = await child;
    if (o.signal.aborted) throw o.signal.reason ?? new Error('trainer cancelled');
    if (stalled) {
      throw new TrainerStalledError(`no trainer progress for ${minutes(o.stallMs!)} (last: ${last ? JSON.stringify(last).slice(0, 300) : 'nothing since it started'}); killed it`);
    }
    const tail = stderrTail.join('\n').slice(-4_000);
    // No exit status and no signal: it never started (e.g. the command does not exist).
    if (result.exitCode === undefined && !result.signal) throw new ConfigError(`trainer command ${JSON.stringify(o.command)} could not start: ${result.message}`);
    if (result.exitCode === JOB_REJECTED_EXIT) throw new ConfigError(`the trainer rejected its job (exit status ${JOB_REJECTED_EXIT}): ${tail}`);
    if (result.exitCode !== 0) {
      if (outOfMemory !== undefined) {
        throw new TrainerOutOfMemoryError(
          `the trainer ran out of GPU memory, which the same job would again: lower trainer.microBatchSize, or train with trainer.lora or on more trainer.devices. It said: ${outOfMemory}`,
        );
      }
      const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.exitCode ?? 'unknown'}`;
      throw new TrainerFailedError(`trainer ${how}: ${tail}`);
    }
  } finally {
    clearTimeout(watchdog);
    o.signal.removeEventListener('abort', stop);
    lines?.close();
    errLines?.close();
    child.stdin?.destroy();
    if (pid !== undefined) await killGroup(pid, grace);
  }
}
