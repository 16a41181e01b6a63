import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { ConfigError } from '../../config/run-config.js';

/** The trainer died or failed otherwise: an infrastructure failure, retried by Temporal. */
export class TrainerFailedError extends Error {
  override name = 'TrainerFailedError';
}

export const JOB_REJECTED_EXIT = 65;

export interface RunTrainerOptions {
  /** argv; the job file's path is appended as the last argument. */
  command: string[];
  jobPath: string;
  cwd: string;
  env?: Record<string, string>;
  signal: AbortSignal;
  /** Each JSON object the trainer prints on its own stdout line. */
  onProgress(event: Record<string, unknown>): void;
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
 * Runs a trainer as the leader of its own process group, so that stopping it also stops what it
 * spawned (torchrun workers, data loaders). Its stdin stays an open pipe: a trainer that sees EOF
 * knows this process died without stopping it. Resolves when it exits with status 0; the group is
 * killed on cancellation, on failure, and in every case before returning.
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
  const stderrTail: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail.push(chunk);
    while (stderrTail.join('').length > 8_000 && stderrTail.length > 1) stderrTail.shift();
  });
  const lines = child.stdout ? createInterface({ input: child.stdout }) : undefined;
  lines?.on('line', (line) => {
    if (!line.startsWith('{')) return; // the contract allows other output; only JSON objects are progress
    try {
      o.onProgress(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a malformed progress line is not worth failing an update over */
    }
  });
  const stop = () => {
    if (pid !== undefined) void killGroup(pid, grace);
  };
  o.signal.addEventListener('abort', stop, { once: true });
  if (o.signal.aborted) stop(); // aborted while spawning: the listener came too late to hear it
  try {
    const result = await child;
    if (o.signal.aborted) throw o.signal.reason ?? new Error('trainer cancelled');
    const tail = stderrTail.join('').slice(-4_000);
    // No exit status and no signal: it never started (e.g. the command does not exist).
    if (result.exitCode === undefined && !result.signal) throw new ConfigError(`trainer command ${JSON.stringify(o.command)} could not start: ${result.message}`);
    if (result.exitCode === JOB_REJECTED_EXIT) throw new ConfigError(`the trainer rejected its job (exit status ${JOB_REJECTED_EXIT}): ${tail}`);
    if (result.exitCode !== 0) {
      const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.exitCode ?? 'unknown'}`;
      throw new TrainerFailedError(`trainer ${how}: ${tail}`);
    }
  } finally {
    o.signal.removeEventListener('abort', stop);
    lines?.close();
    child.stdin?.destroy();
    if (pid !== undefined) await killGroup(pid, grace);
  }
}
