import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { processesOf, useSandbox } from './helpers.js';

describe('sandboxed programs', () => {
  const sandbox = useSandbox({ outputLimitBytes: 4096, fileMb: 4, nproc: 32 });

  async function run(source: string, options: { timeoutMs?: number; memoryMb?: number } = {}) {
    return sandbox.get().runProgram(source, { timeoutMs: 5000, ...options });
  }

  it('have no network', async () => {
    const result = await run(
      'import socket\n' +
        'try:\n    socket.create_connection(("1.1.1.1", 80), timeout=1)\n    print("connected")\n' +
        'except OSError as e:\n    print("refused", e.errno)\n',
    );
    assert.equal(result.status, 'ok');
    assert.match(result.stdout, /^refused/);
  });

  it('see no host files, only the read-only runtime', async () => {
    const result = await run(
      'import os\nprint(sorted(os.listdir("/")))\nprint(os.path.exists("/etc/passwd"), os.path.exists("/work"), os.path.exists("/root/.ssh"))\n',
    );
    assert.equal(result.status, 'ok', result.stderr);
    const [listing, flags] = result.stdout.trim().split('\n');
    assert.doesNotMatch(listing!, /'(etc|home|work|proc|var|bin)'/);
    assert.equal(flags, 'False False False');
  });

  it('cannot write outside their private directory', async () => {
    const result = await run(
      'import os\n' +
        'for path in ("/usr/lib/x", "/x", "/tmp/x", "/sandbox/lib/x"):\n' +
        '    try:\n        open(path, "w").write("x")\n        print("wrote", path)\n' +
        '    except OSError:\n        print("denied", path)\n' +
        'open("here.txt", "w").write("ok")\nprint(os.getcwd(), open("here.txt").read())\n',
    );
    assert.equal(result.status, 'ok', result.stderr);
    assert.doesNotMatch(result.stdout, /wrote/);
    assert.match(result.stdout, /^\/tmp\/\d+ ok$/m);
  });

  it('get a fresh private directory each time', async () => {
    await run('open("left-behind.txt", "w").write("x")');
    const result = await run('import os\nprint(os.listdir("."))');
    assert.equal(result.stdout.trim(), '[]');
  });

  it('run with an empty environment', async () => {
    const result = await run('import os\nprint(dict(os.environ))');
    assert.equal(result.stdout.trim(), '{}');
  });

  it('run as an unprivileged uid that cannot become root', async () => {
    const result = await run(
      'import os\nprint(os.getuid(), os.geteuid(), os.getgroups())\n' +
        'try:\n    os.setuid(0)\n    print("root")\nexcept PermissionError:\n    print("denied")\n',
    );
    const [ids, setuid] = result.stdout.trim().split('\n');
    const [uid, euid] = ids!.split(' ').map(Number);
    assert.ok(sandbox.uids.includes(uid!), `uid ${uid}`);
    assert.equal(euid, uid);
    assert.equal(setuid, 'denied');
  });

  it('can import numpy', async () => {
    const result = await run('import numpy as np\nprint(int(np.arange(10).sum()))');
    assert.equal(result.stdout.trim(), '45', result.stderr);
  });

  it('hit the memory limit as a MemoryError', async () => {
    const result = await run('x = bytearray(2 * 1024 ** 3)\nprint("allocated")', { memoryMb: 512 });
    assert.equal(result.status, 'error');
    assert.match(result.stderr, /MemoryError/);
  });

  it('cannot write files beyond the file size limit', async () => {
    const result = await run('open("big", "wb").write(b"x" * (8 * 1024 * 1024))\nprint("written")');
    assert.equal(result.status, 'error');
    assert.doesNotMatch(result.stdout, /written/);
    assert.match(result.stderr, /File too large/);
  });

  it('time out, and leave no process behind even after setsid and double forks', async () => {
    const result = await run(
      'import os, time\n' +
        'if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n            time.sleep(0.05)\n    os._exit(0)\n' +
        'while True:\n    pass\n',
      { timeoutMs: 500 },
    );
    assert.equal(result.status, 'timeout');
    assert.equal(result.exitCode, null);
    assert.deepEqual(processesOf(sandbox.uids), []);
  });

  it('leave no daemon behind when they exit normally', async () => {
    const result = await run(
      'import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(30)\n    os._exit(0)\nprint("bye")\n',
    );
    assert.equal(result.status, 'ok');
    assert.deepEqual(processesOf(sandbox.uids), []);
  });

  it('cannot fork without bound, and the forked processes die with the program', async () => {
    const result = await run(
      'import os\ncount = 0\nwhile True:\n    try:\n        if os.fork() == 0:\n            while True:\n                pass\n        count += 1\n' +
        '    except OSError:\n        print(count, flush=True)\n        break\n',
      { timeoutMs: 1500 },
    );
    assert.equal(result.status, 'ok', result.stderr);
    assert.ok(Number(result.stdout.trim()) < 32, `forked ${result.stdout}`);
    assert.deepEqual(processesOf(sandbox.uids), []);
    assert.equal((await run('print("after")')).stdout, 'after\n');
  });

  it('have their output capped when they flood stdout', async () => {
    const result = await run('while True:\n    print("x" * 10000)', { timeoutMs: 500 });
    assert.equal(result.status, 'timeout');
    assert.equal(result.stdout.length, 4096);
    assert.equal(result.outputTruncated, true);
  });

  it('report exit codes, signals and uncaught exceptions', async () => {
    assert.deepEqual(
      await Promise.all(
        ['import sys; sys.exit(3)', 'import os; os._exit(0)', 'raise ValueError("boom")', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'].map(
          async (source) => {
            const { status, exitCode } = await run(source);
            return [status, exitCode];
          },
        ),
      ),
      [
        ['error', 3],
        ['ok', 0],
        ['error', 1],
        ['killed', null],
      ],
    );
  });

  it('cannot use ptrace or create namespaces', async () => {
    const result = await run(
      'import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n' +
        'print(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())\nprint(libc.unshare(0x10000000), ctypes.get_errno())\n',
    );
    assert.equal(result.stdout, '-1 1\n-1 1\n', result.stderr);
  });
});
