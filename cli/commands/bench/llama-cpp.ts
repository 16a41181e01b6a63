import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { execa } from 'execa';
import { freePort, waitUntil } from '../../../infra/process.js';

/**
 * llama.cpp's llama-server as the reference engine of `bench generate --compare llama.cpp`: built
 * from the llama.cpp source on PyPI by infra/install-llama-cpp.sh (once, 10-20 minutes; cached),
 * serving the GGUF file the project's checkpoint was converted from (Q4_K_M for the default model).
 */

const repo = fileURLToPath(new URL('../../../', import.meta.url));

export interface LlamaCpp {
  /** Directory holding llama-server and llama-bench. */
  binDir: string;
  gguf: string;
}

/** Builds llama.cpp unless cached, and finds (joining it if shipped in parts) the model's GGUF file. */
export async function locateLlamaCpp(model: string): Promise<LlamaCpp> {
  const { stdout } = await execa(join(repo, 'infra/install-llama-cpp.sh'), [model], { stderr: 'inherit' });
  const [binDir, gguf] = stdout.trim().split('\n').slice(-2);
  if (!binDir || !gguf) throw new Error(`infra/install-llama-cpp.sh printed no binary directory and GGUF path: ${stdout}`);
  return { binDir, gguf };
}

export interface LlamaServerOptions {
  gguf: string;
  port: number;
  /** Slots decoded together: the workload's concurrent streams. */
  parallel: number;
  threads: number;
  /** Context each slot needs: its prompt plus max_tokens. */
  contextPerSlot: number;
}

/** llama-server's command line: one slot per concurrent stream, the whole context split among them. */
export function llamaServerArgs(o: LlamaServerOptions): string[] {
  return [
    ...['-m', o.gguf, '--host', '127.0.0.1', '--port', String(o.port)],
    ...['--parallel', String(o.parallel), '-t', String(o.threads), '-c', String(o.parallel * o.contextPerSlot)],
  ];
}

/**
 * The request body for one stream, with the sampling the embedded server applies: temperature and
 * top_p as asked, and llama.cpp's own defaults (top_k 40, min_p 0.05, repetition penalty) turned
 * off, so that both engines sample from the full distribution.
 */
export function llamaRequestBody(r: { messages: unknown[]; temperature: number; topP: number; maxTokens: number; seed: number; ignoreEos: boolean }) {
  return {
    messages: r.messages,
    temperature: r.temperature,
    top_p: r.topP,
    top_k: 0,
    min_p: 0,
    repeat_penalty: 1,
    max_tokens: r.maxTokens,
    seed: r.seed,
    ignore_eos: r.ignoreEos,
  };
}

export interface RunningLlamaServer {
  baseUrl: string;
  stop(): Promise<void>;
}

export async function startLlamaServer(
  binDir: string,
  opts: Omit<LlamaServerOptions, 'port'>,
  timeoutMs = 300_000,
): Promise<RunningLlamaServer> {
  const port = await freePort();
  const child = spawn(join(binDir, 'llama-server'), llamaServerArgs({ ...opts, port }), { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  // Keep the tail only, and keep draining so that a chatty server never blocks on a full pipe.
  child.stderr!.on('data', (chunk: string) => (log = (log + chunk).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    // /health answers 503 while the model loads, 200 once it serves.
    await waitUntil(
      `llama-server on port ${port}`,
      async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
      timeoutMs,
      () => child.exitCode === null,
    );
  } catch (err) {
    await stop();
    throw new Error(`llama-server did not start: ${err instanceof Error ? err.message : String(err)}\n${log}`, { cause: err });
  }
  return { baseUrl: `http://127.0.0.1:${port}/v1`, stop };
}
