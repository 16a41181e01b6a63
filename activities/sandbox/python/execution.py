"""The first process of an execution's PID namespace (forked by forker.py), before and after it
sandboxes itself.

Its task comes from the supervisor (trusted). It sandboxes itself first: stdio, limits, an empty
environment, the unprivileged uid, a private directory and the syscall filter. The setup frame is
written after that and before any program code runs, so a program cannot fake a setup failure.
"""
import _signal
import os
import resource
import traceback

import harness
from frames import encode_frame, write_all, write_frame

SETUP_FAILED = 70
SETUP_DONE = -2
# Encoded in advance: the child writes it before it has any other use for the JSON encoder.
_SETUP_DONE_FRAME = encode_frame({"i": SETUP_DONE})


def become_sandboxed(limits, workdir, stdout_fd, stderr_fd, keep, cpu_s):
    """stdio, limits, unprivileged uid; every descriptor but keep is closed. The environment is
    empty already (Forker.freeze)."""
    # _signal, not signal: the latter converts to and from enums, which costs a fresh child ~20 pages.
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull if stdout_fd is None else stdout_fd, 1)
    os.dup2(devnull if stderr_fd is None else stderr_fd, 2)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)
    mb = 1 << 20
    for what, value in (
        (resource.RLIMIT_AS, limits["memoryMb"] * mb),
        (resource.RLIMIT_FSIZE, limits["fileMb"] * mb),
        (resource.RLIMIT_NPROC, limits["nproc"]),
        (resource.RLIMIT_NOFILE, 256),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_CPU, cpu_s),
    ):
        hard = value + 1 if what == resource.RLIMIT_CPU else value
        resource.setrlimit(what, (value, hard))
    uid = limits["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.chdir(workdir)


def _report_setup_failure(fd):
    try:
        write_frame(fd, {"setupError": traceback.format_exc()[-4000:]})
    except OSError:
        pass


def main(task, fds, seccomp):
    """Runs task ("program": fds are stdout, stderr, status; otherwise results). Never returns."""
    try:
        if task["kind"] == "program":
            _program(task, *fds, seccomp)
        _items(task, *fds, seccomp)
    except BaseException:
        _report_setup_failure(fds[-1])
    finally:
        os._exit(SETUP_FAILED)


def _program(task, out_w, err_w, st_w, seccomp):
    """Stays a trusted init that only reaps and reports: a program running as pid 1 could not be
    killed by its own signals, which would change what it does."""
    become_sandboxed(task["limits"], task["workdir"], out_w, err_w, [st_w], task["cpuS"])
    child = os.fork()
    if child == 0:
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        seccomp.load()
        write_all(st_w, _SETUP_DONE_FRAME)
        os.close(st_w)
        try:
            harness.run_program(task["source"])
        finally:
            os._exit(1)
    while True:
        reaped, status = os.wait()
        if reaped == child:
            write_frame(st_w, {"status": status})
            os._exit(0)


def _items(task, res_w, seccomp):
    become_sandboxed(task["limits"], task["workdir"], None, None, [res_w], task["cpuS"])
    seccomp.load()
    write_all(res_w, _SETUP_DONE_FRAME)
    try:
        if task["kind"] == "call":
            harness.serve_calls(task["code"], task["entry"], task["items"], res_w, task["perTestS"], task["flushS"])
        harness.serve_parse(task["items"], task["entry"], res_w, task["perTestS"], task["flushS"])
    finally:
        os._exit(1)
