import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/**
 * Runs a Python program in a plain subprocess of the project's virtual environment. Tests use it
 * to execute reference solutions against golden tests until the sandbox can take over; this is
 * the one place to swap when it does. It isolates nothing beyond a separate process and a
 * wall-clock limit, so it must only run trusted code (the repository's own).
 */
export interface PythonResult {
  /** Exited with status 0 within the time limit. */
  ok: boolean;
  timedOut: boolean;
  exitCode: number | undefined;
  stderr: string;
}

const python = fileURLToPath(new URL('../../.venv/bin/python', import.meta.url));

export async function runPython(source: string, { timeoutMs = 20_000 }: { timeoutMs?: number } = {}): Promise<PythonResult> {
  try {
    await access(python);
  } catch {
    throw new Error(`${python} is missing: create the environment with infra/install-python.sh`);
  }
  // -I: ignore PYTHON* variables and the user's site-packages, so results do not depend on the shell.
  const result = await execa(python, ['-I', '-'], { input: source, timeout: timeoutMs, reject: false });
  return {
    ok: result.exitCode === 0 && !result.timedOut,
    timedOut: result.timedOut,
    exitCode: result.exitCode,
    stderr: result.stderr,
  };
}
