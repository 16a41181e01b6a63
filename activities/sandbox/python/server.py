"""Fork server: a warm interpreter that serves execution requests, one at a time, on stdin/stdout.

Started by the TypeScript pool inside bubblewrap. Requests and responses are frames (frames.py).
Each execution runs in a fresh PID namespace under the server's own supervision (supervisor.py),
so nothing an execution starts survives into the next one. Usage: server.py '<json config>' (uid, default limits).
"""
import atexit
import gc
import json
import os
import sys
import traceback

# Imported once here so that programs and the supervisor fork them warm instead of importing them.
import ast  # noqa: F401
import bisect  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import decimal  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import keyword  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import resource  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import typing  # noqa: F401

import numpy  # noqa: F401

import supervisor
from frames import read_frame, write_frame
from seccomp_bpf import Filter, compile_filter


def handle(req, limits, seccomp):
    limits = {**limits, "memoryMb": req.get("memoryMb", limits["memoryMb"])}
    if req["kind"] == "program":
        return supervisor.run_program(req, limits, seccomp)
    items = req["calls"] if req["kind"] == "call" else req["asserts"]
    results = [None] * len(items)
    first = None
    start = 0
    while True:
        chunk = supervisor.run_items(req, start, limits, seccomp)
        if first is None:
            first = chunk
        if not chunk["defined"]:
            reason = "the code could not be defined again" if first["defined"] else "the code is not valid"
            for index in range(start, len(items)):
                results[index] = {"o": "crashed", "error": chunk["defineError"] or reason}
            break
        for index, result in chunk["results"].items():
            results[int(index)] = result
        if chunk["next"] >= len(items):
            break
        start = chunk["next"]
    return {"defined": first["defined"], "defineError": first["defineError"], "results": results}


def main():
    config = json.loads(sys.argv[1])
    limits = config["limits"]
    seccomp = Filter(compile_filter())
    atexit._clear()
    # Everything imported so far is shared copy-on-write with every execution; keep the collector
    # from walking (and so copying) it in each child.
    gc.freeze()
    write_frame(1, {"ready": True})
    while (req := read_frame(0)) is not None:
        try:
            resp = handle(req, limits, seccomp)
        except supervisor.SetupError as err:
            resp = {"infra": str(err)}
        except Exception:
            resp = {"infra": traceback.format_exc()[-4000:]}
        resp["id"] = req.get("id")
        write_frame(1, resp)


if __name__ == "__main__":
    main()
