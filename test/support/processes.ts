import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';

/** Wrapped, because an async function returning the execa promise itself would wait for the exit. */
export interface Child {
  process: ResultPromise<{ all: true; reject: false }>;
  /** What it printed up to and including the ready text. */
  readyOutput?: string;
}

/** Starts `node --import tsx <script> ...args` and resolves once it prints `ready`. */
export function startScript(script: string, args: string[], env: Record<string, string> = {}, readyTimeoutMs = 60_000): Promise<Child> {
  return startProcess('node', ['--import', 'tsx', script, ...args], 'ready', env, readyTimeoutMs);
}

/** Starts `file ...args` and resolves once its output contains `readyText`. */
export async function startProcess(file: string, args: string[], readyText: string | RegExp, env: Record<string, string> = {}, readyTimeoutMs = 60_000): Promise<Child> {
  const child = execa(file, args, { all: true, reject: false, env: { ...process.env, ...env } });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} not ready after ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    child.all!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (typeof readyText === 'string' ? output.includes(readyText) : readyText.test(output)) (clearTimeout(timer), resolve());
    });
    void child.then((r) => (clearTimeout(timer), reject(new Error(`${args.join(' ')} exited (${r.exitCode}) before it was ready:\n${output}`))));
  });
  return { process: child, readyOutput: output };
}

/** kill -9: no shutdown hooks, no goodbye to the server; the process is simply gone. */
export async function killHard({ process }: Child): Promise<void> {
  process.kill('SIGKILL');
  await process;
}

export async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
