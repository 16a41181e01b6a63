import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SandboxUnavailableError, createSandbox } from '../../../activities/sandbox/index.js';
import { sandboxUids, useSandbox } from './helpers.js';

/** Pids of this pool's bubblewrap fork servers (their command line carries the slot uids). */
function forkServers(uids: number[]): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[0] === 'bwrap' && uids.some((uid) => argv.some((a) => a.includes(`"uid":${uid}`)));
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('the fork server pool', () => {
  const sandbox = useSandbox({ concurrency: 1 });

  it('replaces a fork server that died while idle', async () => {
    for (const pid of forkServers(sandbox.uids)) process.kill(pid, 'SIGKILL');
    const result = await sandbox.get().runProgram('print("still here")');
    assert.equal(result.stdout, 'still here\n');
  });

  it('re-runs a request whose fork server died under it', async () => {
    const running = sandbox.get().runProgram('import time\ntime.sleep(0.6)\nprint("done")', { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const killed = forkServers(sandbox.uids);
    assert.ok(killed.length > 0);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    const result = await running;
    assert.equal(result.status, 'ok');
    assert.equal(result.stdout, 'done\n');
  });

  it('re-runs the request queued behind one whose fork server died', async () => {
    const first = sandbox.get().runProgram('import time\ntime.sleep(0.6)\nprint("first")', { timeoutMs: 5000 });
    const second = sandbox.get().runProgram('print("second")');
    await new Promise((resolve) => setTimeout(resolve, 250));
    for (const pid of forkServers(sandbox.uids)) process.kill(pid, 'SIGKILL');
    assert.deepEqual((await Promise.all([first, second])).map((r) => r.stdout), ['first\n', 'second\n']);
  });

  it("replaces the reference's and the tests' fork servers that died", async () => {
    const validate = () =>
      sandbox.get().validateTests({ reference: 'def f(x):\n    return x\n', entryPoint: 'f', asserts: ['assert f(1) == 1'], perTestTimeoutMs: 1000 });
    await validate();
    const others = sandbox.allUids.filter((uid) => !sandbox.uids.includes(uid));
    const killed = forkServers(others);
    assert.ok(killed.length > 0);
    for (const pid of killed) process.kill(pid, 'SIGKILL');
    assert.equal((await validate()).tests[0]!.valid, true);
  });

  it('survives a program that crashes its own interpreter', async () => {
    const crashed = await sandbox.get().runProgram('import ctypes\nctypes.string_at(0)');
    assert.equal(crashed.status, 'killed');
    assert.equal((await sandbox.get().runProgram('print(1)')).stdout, '1\n');
  });
});

describe('a closed sandbox', () => {
  it("leaves none of its pools' fork servers running", async () => {
    const { uidBase, allUids } = sandboxUids(1);
    const sandbox = await createSandbox({ concurrency: 1, uidBase });
    try {
      const identity = 'def f(x):\n    return x\n';
      await sandbox.checkTests({ code: identity, reference: identity, entryPoint: 'f', asserts: ['assert f(1) == 1'], perTestTimeoutMs: 1000 });
      assert.ok(allUids.every((uid) => forkServers([uid]).length > 0));
    } finally {
      await sandbox.close();
    }
    assert.deepEqual(forkServers(allUids), []);
  });
});

describe('a sandbox that cannot start', () => {
  it('fails with SandboxUnavailableError, never with a program outcome', async () => {
    await assert.rejects(createSandbox({ concurrency: 1, python: '/nonexistent/python' }), SandboxUnavailableError);
  });
});
