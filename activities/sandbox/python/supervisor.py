"""Supervises one execution from inside the fork server (trusted code, outside the program's reach).

Each execution's first process is forked into a new PID namespace, so killing it kills everything
the program started, setsid and double forks included. It gets a fresh private directory, drops to
the server's unprivileged uid with limits and the syscall filter, and talks to the supervisor over
pipes under the supervisor's own deadlines. Everything read from the sandbox is untrusted data:
frames are size-capped and values are re-decoded into built-in objects.
"""
import ctypes
import os
import resource
import select
import shutil
import signal
import time
import traceback

import harness
from frames import FrameError, FrameReader, encode_frame, write_frame
from values import canonical

CLONE_NEWPID = 0x20000000
# The program's own per-test timer fires first; ours only catches a harness the program has patched.
GRACE_S = 0.25
SETUP_FAILED = 70
SETUP_DONE = -2
SETUP_TIMEOUT_S = 10

_libc = ctypes.CDLL(None, use_errno=True)
_own_pid_ns = None
_executions = 0


class SetupError(Exception):
    """The sandbox could not be built: an infrastructure failure, never a program outcome."""


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def new_execution(limits):
    """Makes the next fork the first process of a fresh PID namespace; returns its private directory.

    unshare(CLONE_NEWPID) only affects children and works once per namespace we are in, so
    setns back to our own namespace first: one long-lived server can then create one namespace per
    execution without forking a helper.
    """
    global _own_pid_ns, _executions
    if _own_pid_ns is None:
        _own_pid_ns = os.pidfd_open(os.getpid())
    _check(_libc.setns(_own_pid_ns, CLONE_NEWPID), "setns")
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    _executions += 1
    workdir = f"/tmp/{_executions}"
    os.mkdir(workdir, 0o700)
    os.chown(workdir, limits["uid"], limits["uid"])
    return workdir


def remove_workdir(workdir):
    """Called once the namespace is dead, so nothing can race the removal."""
    try:
        os.rmdir(workdir)
    except OSError:
        shutil.rmtree(workdir, ignore_errors=True)


def become_sandboxed(limits, workdir, stdout_fd, stderr_fd, keep, cpu_s):
    """In the namespace's first process: stdio, limits, empty environment, unprivileged uid."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
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
    os.environ.clear()
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


def _cpu_seconds(ms):
    return int(ms // 1000) + 2


class _Loop:
    """Polls the sandbox's pipes and the namespace's first process until a condition or a deadline."""

    def __init__(self, pid):
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.poller = select.poll()
        self.poller.register(self.pidfd, select.POLLIN)
        self.handlers = {}
        self.exited = False
        self.pending = {}

    def watch(self, fd, on_data):
        os.set_blocking(fd, False)
        self.handlers[fd] = on_data
        self.poller.register(fd, select.POLLIN)

    def send(self, fd, data):
        """Queues data for a pipe the sandbox may never read: never blocks the supervisor."""
        os.set_blocking(fd, False)
        self.pending[fd] = self.pending.get(fd, b"") + data
        self.poller.register(fd, select.POLLOUT)

    def run_until(self, done, deadline):
        """True when done() became true, False at the deadline or when the process exited first."""
        while not done():
            if self.exited:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for fd, events in self.poller.poll(max(left * 1000, 1)):
                if fd == self.pidfd:
                    self.exited = True
                elif fd in self.pending:
                    self._flush(fd)
                elif fd in self.handlers:
                    self._read(fd)
        return True

    def _flush(self, fd):
        try:
            sent = os.write(fd, self.pending[fd])
        except BlockingIOError:
            return
        except BrokenPipeError:
            sent = len(self.pending[fd])
        self.pending[fd] = self.pending[fd][sent:]
        if not self.pending[fd]:
            del self.pending[fd]
            self.poller.unregister(fd)

    def _read(self, fd):
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        if chunk:
            self.handlers[fd](chunk)
        else:
            self.poller.unregister(fd)
            del self.handlers[fd]

    def finish(self, kill):
        """Kills the namespace (if asked) and reaps it; afterwards no process of it is left."""
        if kill:
            os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        for fd in list(self.handlers):
            os.set_blocking(fd, True)
            while chunk := os.read(fd, 1 << 16):
                self.handlers[fd](chunk)
        return status


class _Capture:
    def __init__(self, limit):
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def __call__(self, chunk):
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]

    def text(self):
        return self.data.decode("utf-8", "replace")


def run_program(req, limits, seccomp):
    """Runs a whole program as the namespace's first process; returns the exec result."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    workdir = new_execution(limits)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        # The namespace's first process stays a trusted init that only reaps and reports: a program
        # running as pid 1 could not be killed by its own signals, which would change what it does.
        try:
            become_sandboxed(limits, workdir, out_w, err_w, [st_w], _cpu_seconds(req["timeoutMs"]))
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                seccomp.load()
                write_frame(st_w, {"i": SETUP_DONE})
                os.close(st_w)
                try:
                    harness.run_program(req["source"])
                finally:
                    os._exit(1)
            while True:
                reaped, status = os.wait()
                if reaped == child:
                    write_frame(st_w, {"status": status})
                    os._exit(0)
        except BaseException:
            _report_setup_failure(st_w)
        finally:
            os._exit(SETUP_FAILED)
    for fd in (out_w, err_w, st_w):
        os.close(fd)
    stdout, stderr = _Capture(req["outputLimitBytes"]), _Capture(req["outputLimitBytes"])
    reader = FrameReader(8192)
    loop = _Loop(pid)
    try:
        loop.watch(out_r, stdout)
        loop.watch(err_r, stderr)
        loop.watch(st_r, reader.feed)
        loop.run_until(lambda: False, started + req["timeoutMs"] / 1000)
        timed_out = not loop.exited
    finally:
        loop.finish(kill=True)
        for fd in (out_r, err_r, st_r):
            os.close(fd)
        remove_workdir(workdir)
    duration_ms = round((time.monotonic() - started) * 1000)
    frames = reader.frames()
    if {"i": SETUP_DONE} not in frames:
        raise SetupError(next((f["setupError"] for f in frames if "setupError" in f), "the sandbox's first process died"))
    result = {"stdout": stdout.text(), "stderr": stderr.text(), "durationMs": duration_ms,
              "outputTruncated": stdout.truncated or stderr.truncated}
    if timed_out:
        return {"status": "timeout", "exitCode": None, **result}
    status = next((f["status"] for f in frames if type(f.get("status")) is int), None)
    if status is None:
        raise SetupError("the sandbox's first process died before reporting the program's status")
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return {"status": "ok" if code == 0 else "error", "exitCode": code, **result}
    return {"status": "killed", "exitCode": None, **result}


def _checked_value(outcome):
    """Re-decodes an untrusted returned value; anything malformed becomes a crash."""
    if type(outcome) is not dict:
        return {"o": "crashed", "error": "malformed result"}
    kind = outcome.get("o")
    if kind == "returned":
        try:
            value, text = canonical(outcome.get("v"))
        except ValueError as err:
            return {"o": "crashed", "error": f"malformed result: {err}"}
        return {"o": "returned", "v": value, "repr": text}
    if kind in ("raised", "unrepresentable", "timeout", "crashed"):
        return {"o": kind, "error": str(outcome.get("error", ""))[:harness.ERROR_TEXT_LIMIT]}
    return {"o": "crashed", "error": "malformed result"}


def _is_identifier(key):
    import keyword
    return type(key) is str and key.isidentifier() and not keyword.iskeyword(key)


def _checked_parse(outcome, entry):
    kind = outcome.get("o")
    if kind == "invalid":
        return {"o": "invalid", "reason": str(outcome.get("reason")),
                "error": str(outcome.get("error", ""))[:harness.ERROR_TEXT_LIMIT]}
    if kind != "parsed":
        return _checked_value(outcome)
    from values import decode, literal
    try:
        args, kwargs = decode(outcome.get("a")), decode(outcome.get("k"))
        if type(args) is not tuple or type(kwargs) is not dict or not all(map(_is_identifier, kwargs)):
            raise ValueError("malformed arguments")
        args_enc, _ = canonical(outcome.get("a"))
        kwargs_enc, _ = canonical(outcome.get("k"))
    except ValueError as err:
        return {"o": "crashed", "error": str(err)}
    parts = [literal(a) for a in args] + [f"{k}={literal(v)}" for k, v in kwargs.items()]
    return {"o": "parsed", "args": args_enc, "kwargs": kwargs_enc, "call": f"{entry}({', '.join(parts)})",
            "claim": _checked_value(outcome.get("claim"))}


def run_items(req, start, limits, seccomp):
    """Runs items start.. of a "call" or "parse" request in one namespace until one overruns its
    deadline or the namespace dies; returns what it got and where the next namespace resumes."""
    kind, entry = req["kind"], req["entryPoint"]
    items = req["calls"] if kind == "call" else req["asserts"]
    per_test_s = req["perTestTimeoutMs"] / 1000
    res_r, res_w = os.pipe()
    cmd_r, cmd_w = os.pipe()
    workdir = new_execution(limits)
    remaining = len(items) - start
    cpu_s = _cpu_seconds(req["defineTimeoutMs"] + remaining * req["perTestTimeoutMs"])
    pid = os.fork()
    if pid == 0:
        try:
            become_sandboxed(limits, workdir, None, None, [res_w, cmd_r], cpu_s)
            seccomp.load()
            # Written before any program code runs, so a program cannot fake a setup failure.
            write_frame(res_w, {"i": SETUP_DONE})
        except BaseException:
            _report_setup_failure(res_w)
            os._exit(SETUP_FAILED)
        try:
            if kind == "call":
                harness.serve_calls(req["code"], entry, cmd_r, res_w, per_test_s)
            harness.serve_parse(items, entry, cmd_r, res_w, per_test_s)
        finally:
            os._exit(1)
    os.close(res_w)
    os.close(cmd_r)
    reader = FrameReader()
    received, broken = [], []

    def feed(chunk):
        if broken:
            return
        reader.feed(chunk)
        try:
            received.extend(reader.frames())
        except FrameError as err:
            broken.append(str(err))

    def next_frame(deadline):
        if not loop.run_until(lambda: received or broken, deadline):
            return None
        if broken:
            return {"i": None, "o": "crashed", "error": broken[0]}
        return received.pop(0)

    loop = _Loop(pid)
    loop.watch(res_r, feed)
    results = {}
    out = {"defined": False, "defineError": None, "results": results, "next": len(items)}
    try:
        setup = next_frame(time.monotonic() + SETUP_TIMEOUT_S)
        if setup != {"i": SETUP_DONE}:
            raise SetupError((setup or {}).get("setupError") or "the sandbox's first process died")
        # Queue every item at once: one wake-up per result instead of a round trip per item.
        if kind == "call":
            queued = (encode_frame({"i": i, "a": items[i]["args"], "k": items[i]["kwargs"]}) for i in range(start, len(items)))
        else:
            queued = (encode_frame({"i": i}) for i in range(start, len(items)))
        loop.send(cmd_w, b"".join(queued))
        define = next_frame(time.monotonic() + req["defineTimeoutMs"] / 1000)
        if define is None:
            out["defineError"] = "the process exited while defining the code" if loop.exited \
                else "timed out while defining the code"
            return out
        if define.get("i") != -1 or define.get("ok") is not True:
            out["defineError"] = str(define.get("error", "definition failed"))[:harness.ERROR_TEXT_LIMIT]
            return out
        out["defined"] = True
        for index in range(start, len(items)):
            # Each result is due within the per-test limit of the previous one: the sandbox runs
            # the queued items back to back.
            frame = next_frame(time.monotonic() + per_test_s + GRACE_S)
            if frame is None or frame.get("i") != index:
                if frame is None and not loop.exited:
                    results[index] = {"o": "timeout"}
                elif frame is None:
                    results[index] = {"o": "crashed", "error": "the process exited during the test"}
                else:
                    results[index] = {"o": "crashed", "error": frame.get("error") or "out-of-order result"}
                out["next"] = index + 1
                return out
            results[index] = _checked_value(frame) if kind == "call" else _checked_parse(frame, entry)
        return out
    finally:
        loop.finish(kill=True)
        os.close(cmd_w)
        os.close(res_r)
        remove_workdir(workdir)
