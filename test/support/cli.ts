import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { temporalAddress, testNamespace } from './temporal.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));

/** The environment the project's binary needs to reach the test namespace. */
export const cliEnv = { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: testNamespace };

/** The real `code-a1` binary against the test namespace, as a user runs it; never throws. */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, ...cliEnv, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The values of `name{labels} value` lines of a Prometheus scrape whose labels include `labels`. */
export async function scrape(address: string, name: string, labels: Record<string, string>): Promise<number[]> {
  const text = await (await fetch(`http://${address}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
    .map((line) => Number(line.split(' ').at(-1)));
}
