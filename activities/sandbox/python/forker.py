"""Forks executions, each the first process of a fresh PID namespace, from a warm interpreter.

Two processes fork executions: the server itself, with the LEAN modules imported, and its zygote
(zygote.py), with numpy and the rest of FULL. A fork copies every mapping's page tables and an
exit tears them down again, so on the 2-core VM a fork-and-exit of the server with FULL imported
cost ~600 us of CPU (230 mappings, 15 MB of heap), of the lean server ~270 us (100 mappings):
programs that import none of FULL's extra modules fork from the lean one.
"""
import atexit
import ctypes
import gc
import importlib
import os
import re

import execution
from seccomp_bpf import Filter, compile_filter

CLONE_NEWPID = 0x20000000

# Modules that sampled solutions commonly import, imported once so that executions get them warm;
# each adds no mapping (pure Python or built in) or one small extension module.
LEAN = ("ast", "bisect", "collections", "copy", "functools", "heapq", "itertools", "keyword", "math",
        "operator", "re", "string", "typing")
# The rest are heavier: numpy alone adds ~70 mappings and 6 MB of heap.
FULL = LEAN + ("dataclasses", "decimal", "fractions", "hashlib", "random", "statistics", "numpy")
_ZYGOTE_ONLY = frozenset(FULL) - frozenset(LEAN)

_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w. \t,]+))", re.MULTILINE)


def needs_full(source):
    """Whether source imports a module that only the zygote has warm. A guess, never a restriction:
    a lean execution can import anything, numpy included (at ~100 ms)."""
    if "numpy" in source:
        return True
    for match in _IMPORT.finditer(source):
        names = [match[1]] if match[1] else [part.split()[0] for part in match[2].split(",") if part.strip()]
        if any(name.split(".")[0] in _ZYGOTE_ONLY for name in names):
            return True
    return False


class SetupError(Exception):
    """The sandbox could not be built: an infrastructure failure, never a program outcome."""


class Forker:
    def __init__(self, modules):
        for name in modules:
            importlib.import_module(name)
        self.seccomp = Filter(compile_filter())
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.malloc.restype = ctypes.c_void_p
        self._libc.free.argtypes = [ctypes.c_void_p]
        self._own_pid_ns = os.pidfd_open(os.getpid())

    def freeze(self):
        """Call once everything is imported (numpy reads its thread count from the environment).
        Executions get an empty environment; emptied here once rather than in every child. What
        exists now is shared copy-on-write with every execution, so keep the collector from
        walking (and so copying) it in each child."""
        os.environ.clear()
        atexit._clear()
        gc.freeze()

    def fork(self, run_child):
        """Forks the first process of a fresh PID namespace, which calls run_child (which must not
        return); returns its pid."""
        # unshare(CLONE_NEWPID) only affects later children and works once per namespace we are
        # in, so setns back to our own first: one long-lived process can then create one
        # namespace per execution without forking a helper.
        for call, args, what in ((self._libc.setns, (self._own_pid_ns, CLONE_NEWPID), "setns"),
                                 (self._libc.unshare, (CLONE_NEWPID,), "unshare")):
            if call(*args) != 0:
                raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")
        # A large malloc sorts glibc's unsorted free chunks into their bins; done here it spares
        # every child that sorting (~70 copy-on-write faults on chunks spread over the heap, when
        # the forking process has done little since its last fork).
        self._libc.free(self._libc.malloc(4096))
        pid = os.fork()
        if pid == 0:
            try:
                run_child()
            finally:
                os._exit(execution.SETUP_FAILED)
        return pid
