"""The zygote: a child of the server with every FULL module imported, numpy included, that forks
the executions of programs importing them (forker.needs_full).

The server sends it an execution's descriptors over a socket, the first one a pipe that will carry
the task; the zygote forks the execution as the first process of a fresh PID namespace and answers
with a pidfd, through which the server watches and kills it; the zygote reaps it. It runs
with the server's privileges inside the same bubblewrap and never runs program code.
"""
import os
import select
import signal
import socket

import execution
from forker import FULL, Forker, SetupError
from frames import read_frame

MAX_FDS = 8


class Zygote:
    """The server's handle on its zygote."""

    def __init__(self):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            self.sock.close()
            try:
                _serve(theirs)
            finally:
                os._exit(1)
        theirs.close()
        if self.sock.recv(16) != b"ready":
            raise SetupError("the zygote did not start")

    def spawn(self, fds):
        """Has the zygote fork an execution holding fds; returns its pidfd."""
        try:
            socket.send_fds(self.sock, [b"fork"], fds)
            msg, got, _, _ = socket.recv_fds(self.sock, 4096, 1)
        except OSError as err:
            raise SetupError(f"the zygote is gone: {err}") from None
        if msg != b"ok" or len(got) != 1:
            for fd in got:
                os.close(fd)
            raise SetupError(msg.decode("utf-8", "replace") or "the zygote is gone")
        return got[0]


def _run(fds, seccomp):
    task = read_frame(fds[0])
    os.close(fds[0])
    execution.main(task, fds[1:], seccomp)


def _serve(sock):
    # The server's request and response streams are none of the zygote's business.
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    forker = Forker(FULL)
    forker.freeze()
    sock.send(b"ready")
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    # The execution forked last, watched until it is reaped: until then it would still count
    # against its uid's process limit, which the server's own next execution shares.
    last = None

    def reap():
        nonlocal last
        os.waitpid(last[0], 0)
        poller.unregister(last[1])
        os.close(last[1])
        last = None

    while True:
        ready = {fd for fd, _ in poller.poll()}
        if last is not None and last[1] in ready:
            reap()
        if sock.fileno() not in ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 16, MAX_FDS)
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)
        if last is not None:
            # The server asks for the next execution only once the last one's namespace is gone.
            reap()
        reply = "ok"
        try:
            pid = forker.fork(lambda: _run(fds, forker.seccomp))
        except (SetupError, OSError) as err:
            reply = f"the zygote cannot fork: {err}"
        else:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError as err:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                reply = f"the zygote cannot watch its execution: {err}"
            else:
                last = (pid, pidfd)
                poller.register(pidfd, select.POLLIN)
        for fd in fds:
            os.close(fd)
        socket.send_fds(sock, [reply.encode()], [last[1]] if reply == "ok" else [])
