import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SandboxUnavailableError } from './errors.js';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
export const defaultPython = `${projectRoot}.venv/bin/python`;
const harnessDir = fileURLToPath(new URL('./python/', import.meta.url));

/** Where the interpreter and its packages live; resolved once, outside the sandbox. */
export interface PythonRuntime {
  /** The real interpreter binary: a venv link or pyenv shim would cost a start or point outside the binds. */
  executable: string;
  basePrefix: string;
  sitePackages: string;
}

export async function resolvePython(python: string): Promise<PythonRuntime> {
  const probe =
    'import json, os, sys, sysconfig; print(json.dumps({"executable": os.path.realpath(sys.executable), ' +
    '"basePrefix": os.path.realpath(sys.base_prefix), "sitePackages": os.path.realpath(sysconfig.get_paths()["purelib"])}))';
  try {
    const { stdout } = await promisify(execFile)(python, ['-I', '-c', probe]);
    return JSON.parse(stdout) as PythonRuntime;
  } catch (err) {
    throw new SandboxUnavailableError(`cannot run ${python}: run infra/install-sandbox.sh`, { cause: err });
  }
}

export interface ServerLimits {
  uid: number;
  memoryMb: number;
  fileMb: number;
  nproc: number;
}

/**
 * bwrap creates the missing parents of a bind with the mode of the host's: /root is 0700, which
 * would hide a pyenv interpreter from the unprivileged uid. Create them world-traversable first.
 */
export function readableAncestors(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
  }
  return [...dirs].sort().flatMap((d) => ['--perms', '0755', '--dir', d]);
}

/**
 * The fork server's command line: bubblewrap with every namespace but the user one (we are root,
 * and a user namespace would map the sandbox uid back to root, where RLIMIT_NPROC does not apply),
 * only the capabilities the supervisor needs, read-only binds of the interpreter, its libraries and
 * the harness, a size-capped private /tmp, and an empty environment.
 */
export function serverCommand(runtime: PythonRuntime, limits: ServerLimits, tmpMb: number): string[] {
  const binds = [runtime.basePrefix, '/usr/lib', '/usr/lib64'].filter((p) => existsSync(p));
  // -I -S skip the site hooks (~45 ms per start); the packages are put on the path explicitly.
  const boot = "import sys; sys.path[:0] = ['/sandbox/lib', '/sandbox/site-packages']; import server; server.main()";
  return [
    'bwrap',
    ...['--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts', '--unshare-cgroup-try'],
    ...['--die-with-parent', '--new-session', '--clearenv'],
    // One BLAS thread: the server must stay single-threaded to fork safely.
    ...['--setenv', 'OPENBLAS_NUM_THREADS', '1', '--setenv', 'OMP_NUM_THREADS', '1'],
    '--cap-drop', 'ALL',
    ...['CAP_SYS_ADMIN', 'CAP_SETUID', 'CAP_SETGID', 'CAP_KILL', 'CAP_CHOWN'].flatMap((c) => ['--cap-add', c]),
    ...readableAncestors(binds),
    ...binds.flatMap((p) => ['--ro-bind', p, p]),
    ...['--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64'],
    // Traversable by the sandbox uid, so that a program can import from site-packages what the
    // fork server did not import for it (a numpy import the server did not foresee, see forker.py).
    ...['--perms', '0755', '--dir', '/sandbox'],
    ...['--ro-bind', harnessDir, '/sandbox/lib', '--ro-bind', runtime.sitePackages, '/sandbox/site-packages'],
    ...['--dev', '/dev', '--size', String(tmpMb * 1024 * 1024), '--tmpfs', '/tmp', '--chdir', '/tmp'],
    runtime.executable, '-I', '-S', '-c', boot, JSON.stringify({ limits }),
  ];
}
