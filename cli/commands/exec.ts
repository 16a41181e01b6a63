import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { createSandbox, SandboxUnavailableError } from '../../activities/sandbox/index.js';

/** Argument helpers shared by the sandbox commands (exec, check). */
export async function readText(path: string | undefined, flag: string): Promise<string> {
  if (!path) throw new UsageError(`${flag} FILE is required`);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${flag} ${path}: ${(err as Error).message}`);
  }
}

export function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer, got '${text}'`);
  return n;
}

/** Exit 1 with a message when the sandbox itself cannot run (exit 0 means the executor worked). */
export async function withSandboxErrors(work: () => Promise<void>): Promise<number> {
  try {
    await work();
    return 0;
  } catch (err) {
    if (!(err instanceof SandboxUnavailableError)) throw err;
    console.error(`sandbox unavailable: ${err.message}`);
    return 1;
  }
}

/** Output kept per stream, as in training's executions. */
const outputLimitBytes = 65_536;

const exec: Command = {
  summary: 'run a Python program in the sandbox: exec --program FILE.py [--timeout-ms N] [--memory-mb N]',
  async run(argv) {
    const { values } = parseCommandLine(() => parseArgs({
      args: argv,
      options: { program: { type: 'string' }, 'timeout-ms': { type: 'string' }, 'memory-mb': { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
    const source = await readText(values.program, '--program');
    const timeoutMs = positiveInt(values['timeout-ms'], '--timeout-ms', 10_000);
    const memoryMb = positiveInt(values['memory-mb'], '--memory-mb', 1024);
    return withSandboxErrors(async () => {
      const sandbox = await createSandbox({ concurrency: 1, outputLimitBytes });
      try {
        const { status, exitCode, stdout, stderr, durationMs, outputTruncated } = await sandbox.runProgram(source, { timeoutMs, memoryMb });
        console.log(JSON.stringify({ status, exitCode, stdout, stderr, durationMs, outputTruncated }));
        if (outputTruncated) console.error(`exec: output truncated: the sandbox keeps the first ${outputLimitBytes.toLocaleString('en')} bytes of each stream`);
      } finally {
        await sandbox.close();
      }
    });
  },
};
export default exec;

/** parseArgs reports unknown or malformed options with a TypeError: make it a usage error. */
export function parseCommandLine<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
