"""Supervises one execution from inside the fork server (trusted code, outside the program's reach).

Each execution's first process is forked into a new PID namespace (forker.py), so killing it kills
everything the program started, setsid and double forks included. It gets a fresh private
directory, drops to the server's unprivileged uid with limits and the syscall filter
(execution.py), and talks to the supervisor over pipes under the supervisor's own deadlines.
Everything read from the sandbox is untrusted data: frames are size-capped and values are
re-decoded into built-in objects.
"""
import os
import select
import signal
import time

import execution
import harness
from execution import SETUP_DONE
from forker import SetupError
from frames import FrameError, FrameReader, encode_frame
from values import canonical

# The program's own per-test timer fires first; ours only catches a harness the program has patched.
GRACE_S = 0.25
# How long the sandbox may hold results to write them in one batch.
FLUSH_S = 0.05
SETUP_TIMEOUT_S = 10

_executions = 0


def new_workdir(limits):
    """A fresh directory for the next execution, owned by the sandbox uid."""
    global _executions
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
        import shutil  # imported here: with its compression modules it adds ~30 mappings to every fork
        shutil.rmtree(workdir, ignore_errors=True)


class Direct:
    """Starts executions by forking the server itself."""

    def __init__(self, forker):
        self.forker = forker

    def start(self, task, fds):
        """Returns (pidfd, wait until the namespace is gone, None)."""
        pid = self.forker.fork(lambda: execution.main(task, fds, self.forker.seccomp))
        return os.pidfd_open(pid), lambda: os.waitpid(pid, 0), None


class ViaZygote:
    """Starts executions through the zygote (zygote.py), which hands back a pidfd and reaps them."""

    def __init__(self, zygote):
        self.zygote = zygote

    def start(self, task, fds):
        """Returns (pidfd, wait until the namespace is gone, (pipe, frame) that carries the task)."""
        ctl_r, ctl_w = os.pipe()
        try:
            pidfd = self.zygote.spawn([ctl_r, *fds])
        except BaseException:
            os.close(ctl_w)
            raise
        finally:
            os.close(ctl_r)

        def wait():
            # A namespace's first process exits only after every other process in it is gone,
            # and only then does its pidfd turn readable.
            done = select.poll()
            done.register(pidfd, select.POLLIN)
            while not done.poll():
                pass

        return pidfd, wait, (ctl_w, encode_frame(task))


def _start(launcher, task, fds):
    """Starts the execution with fds (our copies are closed in any case); returns its _Loop."""
    try:
        pidfd, wait, ctl = launcher.start(task, fds)
    finally:
        for fd in fds:
            os.close(fd)
    return _Loop(pidfd, wait, ctl)


def _cpu_seconds(ms):
    return int(ms // 1000) + 2


class _Loop:
    """Polls the sandbox's pipes and the namespace's first process until a condition or a deadline."""

    def __init__(self, pidfd, wait, ctl):
        self.pidfd = pidfd
        self.wait = wait
        self.poller = select.poll()
        self.poller.register(self.pidfd, select.POLLIN)
        self.handlers = {}
        self.exited = False
        self.pending = {}
        self.ctl_fd = None
        if ctl is not None:
            self.ctl_fd, task = ctl
            self.send(self.ctl_fd, task)

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

    def finish(self):
        """Kills the namespace and waits for its end; afterwards no process of it is left."""
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()
        os.close(self.pidfd)
        if self.ctl_fd is not None:
            os.close(self.ctl_fd)
        for fd in list(self.handlers):
            os.set_blocking(fd, True)
            while chunk := os.read(fd, 1 << 16):
                self.handlers[fd](chunk)


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


def _task(kind, limits, workdir, cpu_ms, **fields):
    return {"kind": kind, "limits": limits, "workdir": workdir, "cpuS": _cpu_seconds(cpu_ms), **fields}


def run_program(req, limits, launcher):
    """Runs a whole program under the namespace's trusted first process; returns the exec result."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe()
    ours = (out_r, err_r, st_r)
    workdir = new_workdir(limits)
    started = time.monotonic()
    try:
        loop = _start(launcher, _task("program", limits, workdir, req["timeoutMs"], source=req["source"]),
                      [out_w, err_w, st_w])
    except BaseException:
        for fd in ours:
            os.close(fd)
        remove_workdir(workdir)
        raise
    stdout, stderr = _Capture(req["outputLimitBytes"]), _Capture(req["outputLimitBytes"])
    reader = FrameReader(8192)
    try:
        loop.watch(out_r, stdout)
        loop.watch(err_r, stderr)
        loop.watch(st_r, reader.feed)
        loop.run_until(lambda: False, started + req["timeoutMs"] / 1000)
        timed_out = not loop.exited
    finally:
        loop.finish()
        for fd in ours:
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


def run_items(req, start, limits, launcher, batched):
    """Runs items start.. of a "call" or "parse" request in one namespace until one overruns its
    deadline or the namespace dies; returns what it got and where the next namespace resumes.

    Batched, the sandbox holds results for up to FLUSH_S: when it then dies or overruns, the items
    after the last result received are "unsure" (one of them failed, others may have passed) and
    the caller runs them again unbatched, where the first missing result is the one that failed.
    """
    kind, entry = req["kind"], req["entryPoint"]
    items = req["calls"] if kind == "call" else req["asserts"]
    per_test_s = req["perTestTimeoutMs"] / 1000
    if kind == "call":
        todo = [(i, items[i]["args"], items[i]["kwargs"]) for i in range(start, len(items))]
    else:
        todo = [(i, items[i]) for i in range(start, len(items))]
    flush_s = FLUSH_S if batched else 0
    res_r, res_w = os.pipe()
    workdir = new_workdir(limits)
    # The items travel with the task: nothing to send item by item, no round trip.
    task = _task(kind, limits, workdir, req["defineTimeoutMs"] + len(todo) * req["perTestTimeoutMs"],
                 code=req.get("code"), entry=entry, items=todo, perTestS=per_test_s, flushS=flush_s)
    try:
        loop = _start(launcher, task, [res_w])
    except BaseException:
        os.close(res_r)
        remove_workdir(workdir)
        raise
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

    loop.watch(res_r, feed)
    results = {}
    out = {"defined": False, "defineError": None, "results": results, "next": len(items), "unsure": False}
    try:
        setup = next_frame(time.monotonic() + SETUP_TIMEOUT_S)
        if setup != {"i": SETUP_DONE}:
            raise SetupError((setup or {}).get("setupError") or "the sandbox's first process died")
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
            # the items back to back (a batch waits at most FLUSH_S, well within GRACE_S).
            frame = next_frame(time.monotonic() + per_test_s + GRACE_S)
            if frame is None or frame.get("i") != index:
                if batched:
                    out["next"], out["unsure"] = index, True
                    return out
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
        loop.finish()
        os.close(res_r)
        remove_workdir(workdir)
