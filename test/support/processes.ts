import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';

/** Wrapped, because an async function returning the execa promise itself would wait for the exit. */
export interface Child {
  process: ResultPromise<{ all: true; reject: false }>;
}

/** Starts `node --import tsx <script> ...args` and resolves once it prints `ready`. */
export async function startScript(script: string, args: string[], env: Record<string, string> = {}, readyTimeoutMs = 60_000): Promise<Child> {
  const child = execa('node', ['--import', 'tsx', script, ...args], { all: true, reject: false, env: { ...process.env, ...env } });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${readyTimeoutMs} ms:\n${output}`)), readyTimeoutMs);
    child.all!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('ready')) (clearTimeout(timer), resolve());
    });
    void child.then((r) => (clearTimeout(timer), reject(new Error(`${script} exited (${r.exitCode}) before it was ready:\n${output}`))));
  });
  return { process: child };
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
