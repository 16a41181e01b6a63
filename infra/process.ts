import { connect, createServer } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A long-lived service process started in the background, tracked by a pid file. */
export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  pidFile: string;
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the service detached (it outlives this process, in its own process group) unless the
 * pid file names a live process already. Returns the pid.
 */
export async function startDetached(spec: ServiceSpec): Promise<number> {
  const running = await readPid(spec.pidFile);
  if (running) return running;
  await mkdir(dirname(spec.pidFile), { recursive: true });
  await mkdir(dirname(spec.logFile), { recursive: true });
  const log = await open(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: spec.env ?? process.env,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    await writeFile(spec.pidFile, String(child.pid));
    return child.pid!;
  } finally {
    await log.close();
  }
}

/**
 * Starts the service unless its pid file names a live process, which is kept (so a second
 * `stack up` finds the stack's own servers running), then waits until `ready` answers. A port that
 * something else holds is refused: a foreign server there would answer the probe for ours, which
 * dies failing to bind. A server that exits while starting fails this at once, with its log's end.
 */
export async function ensureService(spec: ServiceSpec, port: number, ready: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  let pid = await readPid(spec.pidFile);
  if (!pid) {
    if (await portInUse(port)) {
      throw new Error(`port ${port} is in use by something other than this ${spec.name} server (${spec.pidFile} names no live process): stop it or choose another port`);
    }
    pid = await startDetached(spec);
  }
  const started = pid;
  try {
    await waitUntil(`${spec.name} (pid ${started}) on port ${port}`, ready, timeoutMs, () => isAlive(started));
  } catch (err) {
    throw new Error(`${(err as Error).message}; end of ${spec.logFile}:\n${await logTail(spec.logFile)}`, { cause: err });
  }
  return pid;
}

export async function logTail(logFile: string, lines = 20): Promise<string> {
  try {
    return (await readFile(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM the service's process group, SIGKILL after `graceMs`; removes the pid file. */
export async function stopService(pidFile: string, graceMs = 10_000): Promise<boolean> {
  const pid = await readPid(pidFile);
  await rm(pidFile, { force: true });
  if (!pid) return false;
  await stopPid(pid, graceMs);
  return true;
}

export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signal('SIGKILL');
}

/**
 * Polls `probe` until it resolves true or `timeoutMs` passes; the last error explains a failure.
 * With `alive`, stops as soon as it returns false (the server being waited for has exited).
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (alive && !alive()) throw new Error(`${what}: the process exited before it was ready`, { cause: lastError });
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(250);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`, { cause: lastError });
}

/** A TCP port nothing listens on now (other than `not`). */
export async function freePort(not?: number): Promise<number> {
  for (;;) {
    const probe = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port));
    });
    await new Promise((resolve) => probe.close(resolve));
    if (port !== not) return port;
  }
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
