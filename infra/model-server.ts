import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startDetached, stopService, waitUntil } from './process.js';

/** The embedded model server (python/model_server.py) as a child of this process, on a port of its own. */
export interface ModelServer {
  /** OpenAI-compatible base URL, ending in /v1. */
  baseUrl: string;
  model: string;
  stop(): Promise<void>;
}

const repo = fileURLToPath(new URL('../', import.meta.url));
/** What `code-a1` serves and trains when a config names no model; python/convert_model.py lists the others. */
export const defaultModelName = 'qwen2.5-coder-0.5b-instruct';
/** The small model the tests run on: seconds to load, where the default model takes a minute. */
export const smallModelName = 'smollm2-135m-instruct';

/**
 * The converted checkpoint of an installable model (python/convert_model.py --list); when missing,
 * infra/install-models.sh installs and converts it first (minutes, once).
 */
export async function defaultCheckpoint(name = defaultModelName): Promise<string> {
  const dir = join(process.env.CODE_A1_CACHE ?? join(homedir(), '.cache', 'code-a1'), 'models', name);
  try {
    await access(join(dir, 'CONVERSION_COMPLETE.json'));
    return dir;
  } catch {
    const { stdout } = await execa(join(repo, 'infra/install-models.sh'), [name], { stderr: 'inherit' });
    return stdout.trim().split('\n').at(-1)!;
  }
}

/**
 * Starts the server with `--port 0` and reads the port it bound from its start-up line, so
 * parallel test files never race for a port. Start-up takes a few seconds (model load). Without a
 * checkpoint it serves the installed model named `model`.
 */
export async function startModelServer({
  timeoutMs = 120_000,
  checkpoint,
  model = defaultModelName,
  port = 0,
  threads,
  dtype,
  args = [],
}: {
  timeoutMs?: number;
  checkpoint?: string;
  model?: string;
  port?: number;
  threads?: number;
  dtype?: string;
  /** More command-line options, e.g. `--fault ignore-reloads` in tests. */
  args?: string[];
} = {}): Promise<ModelServer> {
  checkpoint ??= await defaultCheckpoint(model);
  const child = spawn(
    join(repo, '.venv/bin/python'),
    [
      join(repo, 'python/model_server.py'),
      ...['--checkpoint', checkpoint, '--model-name', model, '--port', String(port)],
      ...(threads ? ['--threads', String(threads)] : []),
      ...(dtype ? ['--dtype', dtype] : []),
      ...args,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`model server not serving after ${timeoutMs} ms:\n${log}`)), timeoutMs);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      log += chunk;
      const match = /serving \S+ at (http:\/\/\S+\/v1)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`model server exited with ${code} before serving:\n${log}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  // Keep draining stderr so a chatty server never blocks on a full pipe.
  child.stderr!.resume();
  return {
    baseUrl,
    model,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The embedded server as a background service of the local stack (pid file, log), answering
 * /health before this returns. Used by `code-a1 stack up --with-models`.
 */
export async function startModelService(opts: { stateDir: string; name: string; port: number; checkpoint: string; threads: number }): Promise<string> {
  await startDetached({
    name: opts.name,
    command: join(repo, '.venv/bin/python'),
    args: [
      join(repo, 'python/model_server.py'),
      ...['--checkpoint', opts.checkpoint, '--model-name', opts.name, '--host', '127.0.0.1', '--port', String(opts.port)],
      ...['--threads', String(opts.threads)],
    ],
    pidFile: `${opts.stateDir}/${opts.name}.pid`,
    logFile: `${opts.stateDir}/${opts.name}.log`,
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' },
  });
  const baseUrl = `http://127.0.0.1:${opts.port}/v1`;
  await waitUntil(`model server ${opts.name} on port ${opts.port}`, async () => (await fetch(`http://127.0.0.1:${opts.port}/health`)).ok, 180_000);
  return baseUrl;
}

export function stopModelService(opts: { stateDir: string; name: string }): Promise<boolean> {
  return stopService(`${opts.stateDir}/${opts.name}.pid`);
}
