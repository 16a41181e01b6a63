import { readdirSync, readFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { createSandbox, type Sandbox, type SandboxOptions, type TestCase } from '../../../activities/sandbox/index.js';

let uidBlock = 0;

/** The slot uids of a sandbox's three pools (candidates', reference's, tests'; see createSandbox). */
export function sandboxUids(concurrency: number): { uidBase: number; uids: number[]; allUids: number[] } {
  const uidBase = 400_000 + ((process.pid % 4096) * 16 + uidBlock++) * 16;
  const allUids = Array.from({ length: 3 * concurrency }, (_, i) => uidBase + i);
  return { uidBase, uids: allUids.slice(0, concurrency), allUids };
}

/**
 * A sandbox for one test file, created before its tests and closed after them. Its uids are
 * chosen here so that tests can look for processes a program left behind (`uids`: those that
 * candidates and programs run as) or for every pool's fork servers (`allUids`).
 */
export function useSandbox(options: SandboxOptions = {}): { get: () => Sandbox; uids: number[]; allUids: number[] } {
  const concurrency = options.concurrency ?? 2;
  const { uidBase, uids, allUids } = sandboxUids(concurrency);
  let sandbox: Sandbox | null = null;
  before(async () => {
    sandbox = await createSandbox({ ...options, concurrency, uidBase });
  });
  after(async () => {
    await sandbox?.close();
  });
  return {
    get: () => {
      if (!sandbox) throw new Error('sandbox not started');
      return sandbox;
    },
    uids,
    allUids,
  };
}

/** Pids of live (non-zombie) processes whose real uid is one of uids. */
export function processesOf(uids: number[]): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const zombie = /^State:\s+Z/m.test(status);
      if (uids.includes(uid) && !zombie) found.push(Number(entry));
    } catch {
      // The process exited while we looked.
    }
  }
  return found;
}

/** Validates asserts against a reference and returns the valid ones as runnable tests. */
export async function testsFrom(sandbox: Sandbox, reference: string, entryPoint: string, asserts: string[]): Promise<TestCase[]> {
  const validation = await sandbox.validateTests({ reference, entryPoint, asserts, perTestTimeoutMs: 2000 });
  const invalid = validation.tests.filter((t) => !t.valid);
  if (invalid.length) throw new Error(`invalid tests in a fixture: ${JSON.stringify(invalid)}`);
  return validation.tests.map((t) => ({ call: t.call!, expected: t.expected! }));
}
