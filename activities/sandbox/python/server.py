"""Fork server: a warm interpreter that serves execution requests, one at a time, on stdin/stdout.

Started by the TypeScript pool inside bubblewrap. Requests and responses are frames (frames.py).
Each execution runs in a fresh PID namespace under the server's own supervision (supervisor.py),
so nothing an execution starts survives into the next one. The server forks executions itself,
except those of programs that import numpy or other heavy modules: its zygote (zygote.py) has
those warm and forks them. Usage: server.py '<json config>' (uid, default limits).
"""
import json
import sys
import traceback

import supervisor
from forker import LEAN, Forker, needs_full
from frames import read_frame, write_frame
from zygote import Zygote


def handle(req, limits, direct, zygote):
    limits = {**limits, "memoryMb": req.get("memoryMb", limits["memoryMb"])}
    if req["kind"] == "program":
        return supervisor.run_program(req, limits, zygote if needs_full(req["source"]) else direct)
    # Parsing evaluates assert arguments with builtins and math only.
    launcher = zygote if req["kind"] == "call" and needs_full(req["code"]) else direct
    items = req["calls"] if req["kind"] == "call" else req["asserts"]
    results = [None] * len(items)
    first = None
    start = 0
    # After the first item that failed (timed out or killed its process), the rest run unbatched:
    # a candidate that crashes on every item would otherwise cost two executions per item.
    batched = True
    while True:
        chunk = supervisor.run_items(req, start, limits, launcher, batched)
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
        batched = False
    return {"defined": first["defined"], "defineError": first["defineError"], "results": results}


def main():
    config = json.loads(sys.argv[1])
    limits = config["limits"]
    zygote = supervisor.ViaZygote(Zygote())
    forker = Forker(LEAN)
    forker.freeze()
    direct = supervisor.Direct(forker)
    write_frame(1, {"ready": True})
    while (req := read_frame(0)) is not None:
        try:
            resp = handle(req, limits, direct, zygote)
        except supervisor.SetupError as err:
            resp = {"infra": str(err)}
        except Exception:
            resp = {"infra": traceback.format_exc()[-4000:]}
        resp["id"] = req.get("id")
        write_frame(1, resp)


if __name__ == "__main__":
    main()
