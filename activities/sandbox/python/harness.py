"""Code that runs inside the sandbox, after privileges are dropped and the syscall filter is loaded.

Nothing here is trusted by the supervisor: a program can patch any of it in its own process.
What comes out is data that the supervisor validates; expected values never enter these processes.
"""
import _signal
import ast
import atexit
import builtins
import os
import sys
import time
import traceback
import types

from frames import encode_frame, write_all
from values import Unrepresentable, decode, encode

ERROR_TEXT_LIMIT = 2000


def describe(err):
    try:
        text = f"{type(err).__name__}: {err}"
    except BaseException:
        text = type(err).__name__
    return text[:ERROR_TEXT_LIMIT]


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def run_program(source):
    """Runs source as a whole program (`__main__`) and exits like the interpreter would."""
    code = 1
    try:
        compiled = compile(source, "<program>", "exec")
        module = types.ModuleType("__main__")
        module.__builtins__ = builtins
        sys.modules["__main__"] = module
        sys.argv = ["<program>"]
        exec(compiled, module.__dict__)
        code = 0
    except SystemExit as exit_:
        code = exit_code(exit_)
    except BaseException:
        traceback.print_exc()
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    _flush()
    os._exit(code)


def exit_code(exit_):
    if exit_.code is None:
        return 0
    if type(exit_.code) is int:
        return exit_.code & 0xFF
    try:
        print(exit_.code, file=sys.stderr)
    except BaseException:
        pass
    return 1


class TestTimeout(BaseException):
    """Raised by the per-test timer; a BaseException so that `except Exception` does not swallow it."""


def _on_alarm(signum, frame):
    raise TestTimeout()


def _timed(index, work, timeout_s):
    """Runs work() under a per-test timer. A program that swallows the timer or blocks in C code
    overruns the supervisor's deadline instead, and the supervisor kills the whole namespace."""
    _signal.signal(_signal.SIGALRM, _on_alarm)
    started = time.monotonic()
    try:
        _signal.setitimer(_signal.ITIMER_REAL, timeout_s)
        try:
            frame = work()
        finally:
            _signal.setitimer(_signal.ITIMER_REAL, 0)
    except TestTimeout:
        frame = {"o": "timeout"}
    if time.monotonic() - started > timeout_s:
        frame = {"o": "timeout"}
    frame["i"] = index
    return frame


def _result_of(fn):
    try:
        value = fn()
    except TestTimeout:
        raise
    except BaseException as err:
        return {"o": "raised", "error": describe(err)}
    try:
        return {"o": "returned", "v": encode(value)}
    except Unrepresentable as err:
        return {"o": "unrepresentable", "error": str(err)}
    except TestTimeout:
        raise
    except BaseException as err:
        return {"o": "unrepresentable", "error": describe(err)}


class _Results:
    """Result frames, written in batches: the supervisor wakes once per batch rather than once per
    item. A frame waits at most until the item after the one that is running when flush_s runs
    out (flush_s 0: never), or until the batch holds BATCH_BYTES."""

    BATCH_BYTES = 1 << 16

    def __init__(self, fd, flush_s):
        self.fd = fd
        self.flush_s = flush_s
        self.pending = []
        self.size = 0
        self.last = time.monotonic()

    def add(self, frame, now=False):
        data = encode_frame(frame)
        self.pending.append(data)
        self.size += len(data)
        if now or self.size >= self.BATCH_BYTES or time.monotonic() - self.last >= self.flush_s:
            self.flush()

    def flush(self):
        write_all(self.fd, b"".join(self.pending))
        self.pending.clear()
        self.size = 0
        self.last = time.monotonic()


def serve_calls(code, entry, calls, res_fd, timeout_s, flush_s):
    """Defines code, then runs each call ([index, args, kwargs]), each under its own timer."""
    results = _Results(res_fd, flush_s)
    module = types.ModuleType("solution")
    module.__builtins__ = builtins
    sys.modules["solution"] = module
    try:
        exec(compile(code, "<solution>", "exec"), module.__dict__)
        # Written at once: the supervisor times the definition and the first call from it.
        results.add({"i": -1, "ok": True}, now=True)
    except BaseException as err:
        results.add({"i": -1, "ok": False, "error": describe(err)}, now=True)
        _flush()
        os._exit(0)
    for index, encoded_args, encoded_kwargs in calls:

        def call(encoded_args=encoded_args, encoded_kwargs=encoded_kwargs):
            args, kwargs = decode(encoded_args), decode(encoded_kwargs)
            fn = module.__dict__.get(entry)
            if fn is None:
                return {"o": "raised", "error": f"NameError: name '{entry}' is not defined"}
            return _result_of(lambda: fn(*args, **kwargs))

        results.add(_timed(index, call, timeout_s))
    results.flush()
    os._exit(0)


class InvalidAssert(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(detail)
        self.reason = reason


def _capture(*args, **kwargs):
    return args, kwargs


def split_assert(text, entry):
    """(call node with the entry point replaced by a capture function, claim node)."""
    try:
        tree = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        raise InvalidAssert("unparseable", describe(err)) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        raise InvalidAssert("unparseable", "not a single assert statement")
    test = tree.body[0].test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        raise InvalidAssert("unparseable", "not of the form `assert call == expected`")

    def is_entry_call(node):
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry

    left, right = test.left, test.comparators[0]
    if is_entry_call(left):
        call, claim = left, right
    elif is_entry_call(right):
        call, claim = right, left
    else:
        raise InvalidAssert("not_entry_point", f"neither side calls {entry}")
    call.func = ast.Name(id="__capture__", ctx=ast.Load())
    return ast.Expression(call), ast.Expression(claim)


def parse_assert(text, entry):
    """Evaluates an assert's arguments and claimed value (builtins and math only, no entry point)."""
    import math
    try:
        call, claim = split_assert(text, entry)
        call_code = compile(ast.fix_missing_locations(call), "<test>", "eval")
        claim_code = compile(ast.fix_missing_locations(claim), "<test>", "eval")
    except InvalidAssert as err:
        return {"o": "invalid", "reason": err.reason, "error": str(err)}
    except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
        return {"o": "invalid", "reason": "unparseable", "error": describe(err)}
    try:
        args, kwargs = eval(call_code, {"__builtins__": builtins, "math": math, "__capture__": _capture})
        encoded_args, encoded_kwargs = encode(args), encode(kwargs)
    except Unrepresentable as err:
        return {"o": "invalid", "reason": "args_unrepresentable", "error": str(err)}
    except TestTimeout:
        raise
    except BaseException as err:
        return {"o": "invalid", "reason": "args_error", "error": describe(err)}
    claimed = _result_of(lambda: eval(claim_code, {"__builtins__": builtins, "math": math}))
    return {"o": "parsed", "a": encoded_args, "k": encoded_kwargs, "claim": claimed}


def serve_parse(asserts, entry, res_fd, timeout_s, flush_s):
    """Parses each assert ([index, text]), each under its own timer."""
    results = _Results(res_fd, flush_s)
    results.add({"i": -1, "ok": True}, now=True)
    for index, text in asserts:
        results.add(_timed(index, lambda: parse_assert(text, entry), timeout_s))
    results.flush()
    os._exit(0)
