"""One iteration's metrics as a TensorBoard event file.

Reads an iteration record (activities/run-state.ts recordIteration) as JSON on stdin and writes
every numeric metric of it as a scalar at step = iteration into one event file at --out, through
tensorboard's own EventFileWriter (the writer torch.utils.tensorboard uses), so that any
TensorBoard reads it. One file per iteration at a name the caller fixes: TensorBoard merges the
event files of a directory, and a retried iteration overwrites its file instead of adding a
second point.

Tags are grouped for TensorBoard's sidebar (the part before the first '/'):
    reward/code, reward/test           mean code and test rewards
    tests/valid_ratio, tests/attack_rate, mistake_book/tests, code/invalid_rate
    eval/<benchmark>/pass@<k>          evaluation, in the iterations that ran one
    train/<role>/<metric>              trainer metrics per role (loss, kl, clip_fraction, grad_norm, ...)
    time/<stage>_s                     stage durations in seconds
    tokens/<stage>/<kind>              token counts of the generation stages
    <stage>/<name>                     everything else, as the stage summarised it

Usage: tensorboard_log.py --out FILE < record.json   (prints {"file": ..., "tags": N})
Exit status: 0 written; 2 the input is not an iteration record; 3 the tensorboard package is
missing. Both are permanent: the caller retries only other failures.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
import time

BAD_INPUT = 2
NO_LIBRARY = 3

# The metrics people read first, under names that say what they are.
NAMED = {
    "score.codeRewardMean": "reward/code",
    "score.testRewardMean": "reward/test",
    "score.validScoreMean": "reward/test_valid_term",
    "score.validTestRatio": "tests/valid_ratio",
    "score.attackRate": "tests/attack_rate",
    "score.bookAttackRate": "tests/book_attack_rate",
    "execute.validAssertRatio": "tests/valid_assert_ratio",
    "updateMistakeBook.bookTests": "mistake_book/tests",
    "updateMistakeBook.bookProblems": "mistake_book/problems",
    "updateMistakeBook.retiredProblems": "mistake_book/retired_problems",
    "score.invalidCodeRate": "code/invalid_rate",
    "execute.invalidCodeRate": "code/invalid_rate_executed",
}

# Checked in order; the first pattern that matches names the tag. `scale` converts the value.
PATTERNS = [
    (re.compile(r"^evaluate\.(.+)\.passAt(\d+)$"), lambda m: f"eval/{m[1]}/pass@{m[2]}", 1.0),
    (re.compile(r"^evaluate\.(.+)$"), lambda m: f"eval/{m[1].replace('.', '/')}", 1.0),
    (re.compile(r"^train\.([^.]+)\.(.+)$"), lambda m: f"train/{m[1]}/{m[2]}", 1.0),
    (re.compile(r"^duration\.(.+)Ms$"), lambda m: f"time/{m[1]}_s", 1e-3),
    (re.compile(r"^([^.]+)\.(.+)Tokens$"), lambda m: f"tokens/{m[1]}/{m[2]}", 1.0),
    (re.compile(r"^([^.]+)\.(.+)$"), lambda m: f"{m[1]}/{m[2].replace('.', '/')}", 1.0),
]


def tag_for(metric):
    """(tag, scale) of a stored metric name; names no pattern knows keep their own spelling under other/."""
    if metric in NAMED:
        return NAMED[metric], 1.0
    for pattern, name, scale in PATTERNS:
        m = pattern.match(metric)
        if m:
            return name(m), scale
    return f"other/{metric}", 1.0


def scalars(record):
    """{tag: value} of the record's finite numeric metrics; null (a stored NaN) and non-numbers are left out.

    The named metrics claim their tags first; a metric whose tag is already taken (a stage
    summary that happens to spell a named tag) keeps its stored name under other/ instead of
    overwriting a curve.
    """
    metrics = [(m, v) for m, v in record["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    metrics.sort(key=lambda mv: (mv[0] not in NAMED, mv[0]))
    out = {}
    for metric, value in metrics:
        tag, scale = tag_for(metric)
        if tag in out:
            tag, scale = f"other/{metric}", 1.0
        n = 1
        while tag in out:
            n += 1
            tag = f"other/{metric}_{n}"
        out[tag] = value * scale
    return out


def read_record(text):
    """The record from stdin, checked for what the event file needs; exits with BAD_INPUT otherwise."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        record = None
        print(f"input is not JSON: {e}", file=sys.stderr)
    ok = (
        isinstance(record, dict)
        and isinstance(record.get("iteration"), int)
        and not isinstance(record.get("iteration"), bool)
        and record["iteration"] >= 0
        and isinstance(record.get("metrics"), dict)
    )
    if not ok:
        print("input is not an iteration record (needs an integer iteration >= 0 and a metrics object)", file=sys.stderr)
        raise SystemExit(BAD_INPUT)
    return record


def write_event_file(record, out):
    """Writes the record's scalars into the file `out`, replacing it; returns the number of tags."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    values = scalars(record)
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    # The writer names its file after the clock, host and pid: write in a private folder, then
    # rename into place, which also means a reader never sees half a file.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tensorboard-") as tmp:
        writer = EventFileWriter(tmp)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in values.items()])
        writer.add_event(event_pb2.Event(step=record["iteration"], summary=summary, wall_time=time.time()))
        writer.close()
        (written,) = os.listdir(tmp)
        os.replace(os.path.join(tmp, written), out)
    return len(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="event file to write (its name should contain 'tfevents')")
    args = parser.parse_args()
    record = read_record(sys.stdin.read())
    try:
        import tensorboard  # noqa: F401
    except ImportError as e:
        print(f"the tensorboard package is not installed ({e}): run infra/install-python.sh", file=sys.stderr)
        raise SystemExit(NO_LIBRARY) from None
    tags = write_event_file(record, args.out)
    print(json.dumps({"file": os.path.abspath(args.out), "tags": tags}))


if __name__ == "__main__":
    main()
