"""Writes problems.jsonl, the project's built-in training set, from the problems below.

Every problem here was written for this project. Rows take the shape of the HumanEval+/MBPP+
parquet (prompt messages, description, GT_code, problem, test, data_source, extra_info), so one
loader reads both. Before writing, each reference solution is run against its golden tests and
a function returning None is checked to fail them; the build stops on the first problem that
does not hold, so the file on disk is always a verified set.

    .venv/bin/python data/builtin/build.py
"""

import ast
import json
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).with_name("problems.jsonl")

# The parquet's prompt wording, so built-in rows and benchmark rows read alike to the models.
SYSTEM = "You are a helpful code completion assistant."
INSTRUCTION = (
    "Given the following Question, complete the function. Output the complete function inside "
    "'```python ... ```' code block, and do not output anything else.\n\nQuestion:\n"
)


@dataclass
class P:
    name: str
    description: str
    code: str
    tests: str


PROBLEMS = [
    P(
        "squeeze_runs",
        "Shorten every run of identical consecutive characters in `s` that is longer than `k` "
        "to exactly `k` characters; shorter runs stay as they are. Characters are compared "
        "exactly (case matters). `k` is at least 0, and `k == 0` removes every character.",
        r"""
def squeeze_runs(s: str, k: int) -> str:
    out = []
    run = 0
    for i, ch in enumerate(s):
        run = run + 1 if i > 0 and s[i - 1] == ch else 1
        if run <= k:
            out.append(ch)
    return "".join(out)
""",
        r"""
assert candidate("aaabccddd", 2) == "aabccdd"
assert candidate("", 3) == ""
assert candidate("abc", 1) == "abc"
assert candidate("aaaa", 0) == ""
assert candidate("aAaa", 1) == "aAa"
assert candidate("xxyyyxx", 2) == "xxyyxx"
assert candidate("zzzz", 10) == "zzzz"
assert candidate("  a  ", 1) == " a "
""",
    ),
    P(
        "parse_duration",
        "Convert a compact duration such as '1h30m' into seconds. Units are w (week, 7 days), "
        "d, h, m and s. Each unit appears at most once, units appear from largest to smallest, "
        "each is preceded by one or more ASCII digits (leading zeros allowed), and there are no "
        "spaces. At least one component is required and units are lowercase. Return -1 for any "
        "text that breaks these rules.",
        r"""
import re

_PATTERN = re.compile(r"(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_SECONDS = (604800, 86400, 3600, 60, 1)


def parse_duration(text: str) -> int:
    match = _PATTERN.fullmatch(text)
    if match is None or all(group is None for group in match.groups()):
        return -1
    return sum(int(group) * unit for group, unit in zip(match.groups(), _SECONDS) if group is not None)
""",
        r"""
assert candidate("1h30m") == 5400
assert candidate("45s") == 45
assert candidate("1w1s") == 604801
assert candidate("0s") == 0
assert candidate("") == -1
assert candidate("1m1h") == -1
assert candidate("1h1h") == -1
assert candidate("h") == -1
assert candidate("10") == -1
assert candidate("1d 2h") == -1
assert candidate("007m") == 420
assert candidate("2d3h4m5s") == 183845
assert candidate("1H") == -1
""",
    ),
    P(
        "parse_ranges",
        "Expand a range list such as '1-3,5' into integers. Items are separated by commas; an "
        "item is a non-negative integer 'a' or a range 'a-b'. A range with a > b counts down. "
        "Whitespace around items and around '-' is ignored, empty items are skipped, and a "
        "number that was already produced is not repeated (its first position is kept).",
        r"""
def parse_ranges(spec: str) -> list:
    seen = set()
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        if "-" in item:
            a, b = (int(part.strip()) for part in item.split("-", 1))
            step = 1 if a <= b else -1
            values = range(a, b + step, step)
        else:
            values = [int(item)]
        for value in values:
            if value not in seen:
                seen.add(value)
                out.append(value)
    return out
""",
        r"""
assert candidate("1-3,5") == [1, 2, 3, 5]
assert candidate("5-3") == [5, 4, 3]
assert candidate(" 2 , 2-4 ") == [2, 3, 4]
assert candidate("") == []
assert candidate("7,,8,") == [7, 8]
assert candidate("3-3") == [3]
assert candidate("4-2,1-5") == [4, 3, 2, 1, 5]
assert candidate("10 - 12") == [10, 11, 12]
assert candidate("0") == [0]
""",
    ),
    P(
        "parse_kv",
        "Parse a line of 'key=value' pairs separated by ';' into a dict. Keys and unquoted "
        "values are stripped of surrounding whitespace. A value that starts (after optional "
        "spaces) with a double quote runs to the next unescaped double quote: inside it ';' "
        "and '=' are ordinary, a backslash makes the next character literal, whitespace is kept, "
        "and text between the closing quote and the next ';' is ignored; an unterminated quote "
        "runs to the end of the line. An unquoted value runs to the next ';' (it may contain "
        "'='). A segment without '=' maps its key to True. Segments whose key is empty are "
        "ignored, and a later duplicate key overwrites an earlier one.",
        r"""
def parse_kv(line: str) -> dict:
    result = {}
    i, n = 0, len(line)
    while i < n:
        j = i
        while j < n and line[j] not in "=;":
            j += 1
        key = line[i:j].strip()
        if j >= n or line[j] == ";":
            if key:
                result[key] = True
            i = j + 1
            continue
        i = j + 1
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == '"':
            i += 1
            chars = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(line[i])
                i += 1
            value = "".join(chars)
            while i < n and line[i] != ";":
                i += 1
        else:
            j = i
            while j < n and line[j] != ";":
                j += 1
            value = line[i:j].strip()
            i = j
        if key:
            result[key] = value
        i += 1
    return result
""",
        r"""
assert candidate("a=1; b=two") == {"a": "1", "b": "two"}
assert candidate('msg="x;y=z"; n=1') == {"msg": "x;y=z", "n": "1"}
assert candidate('q="say \\"hi\\""') == {"q": 'say "hi"'}
assert candidate("flag; n=2") == {"flag": True, "n": "2"}
assert candidate("a=1;a=2") == {"a": "2"}
assert candidate("") == {}
assert candidate("e=") == {"e": ""}
assert candidate(' p = " sp " ') == {"p": " sp "}
assert candidate('x="open; y=1') == {"x": "open; y=1"}
assert candidate("=5;;k=v") == {"k": "v"}
assert candidate("a=1=2") == {"a": "1=2"}
assert candidate('c="q"junk; d=4') == {"c": "q", "d": "4"}
""",
    ),
    P(
        "split_csv_line",
        "Split one CSV line into fields on `sep`. A field whose first character is a double "
        "quote is quoted: inside it, two double quotes stand for one and `sep` is ordinary; after "
        "its closing quote, any characters up to the next separator are appended to the field "
        "as they are. An unterminated quoted field runs to the end of the line. A field that does "
        "not start with a quote is taken literally up to the next separator (spaces included). "
        "An empty line is one empty field.",
        r"""
def split_csv_line(line: str, sep: str = ",") -> list:
    fields = []
    i, n = 0, len(line)
    while True:
        if i < n and line[i] == '"':
            i += 1
            chars = []
            while i < n:
                if line[i] == '"':
                    if i + 1 < n and line[i + 1] == '"':
                        chars.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(line[i])
                i += 1
            while i < n and line[i] != sep:
                chars.append(line[i])
                i += 1
            fields.append("".join(chars))
        else:
            j = line.find(sep, i)
            if j == -1:
                j = n
            fields.append(line[i:j])
            i = j
        if i >= n:
            return fields
        i += 1
""",
        r'''
assert candidate("a,b,c") == ["a", "b", "c"]
assert candidate('a,"b,c",d') == ["a", "b,c", "d"]
assert candidate('"he said ""hi"""') == ['he said "hi"']
assert candidate("") == [""]
assert candidate(",,") == ["", "", ""]
assert candidate('x;"y;z"', ";") == ["x", "y;z"]
assert candidate(' "a" ,b') == [' "a" ', "b"]
assert candidate('"ab"cd,e') == ["abcd", "e"]
assert candidate('"",x') == ["", "x"]
assert candidate('"a""') == ['a"']
assert candidate("a,") == ["a", ""]
''',
    ),
    P(
        "semver_sort",
        "Sort semantic version strings 'MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]' by Semantic "
        "Versioning 2.0 precedence: compare major, minor and patch numerically; a version with a "
        "prerelease is lower than the same version without one; prerelease identifiers "
        "(separated by '.') are compared left to right, numeric identifiers numerically, "
        "others by ASCII order, a numeric identifier is lower than a non-numeric one, and a "
        "shorter list that is a prefix of a longer one is lower. The prerelease starts after the "
        "first '-' (it may contain more hyphens). Build metadata is ignored, and versions of "
        "equal precedence keep their input order.",
        r"""
def _precedence(version):
    core = version.split("+", 1)[0]
    main, dash, prerelease = core.partition("-")
    major, minor, patch = (int(part) for part in main.split("."))
    if not dash:
        return (major, minor, patch, 1, ())
    identifiers = []
    for ident in prerelease.split("."):
        if ident.isascii() and ident.isdigit():
            identifiers.append((0, int(ident), ""))
        else:
            identifiers.append((1, 0, ident))
    return (major, minor, patch, 0, tuple(identifiers))


def semver_sort(versions: list) -> list:
    return sorted(versions, key=_precedence)
""",
        r"""
assert candidate(["1.0.0", "1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-alpha", "1.0.0-beta.2", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-alpha.1"]) == ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
assert candidate(["1.10.0", "1.2.0", "1.9.9"]) == ["1.2.0", "1.9.9", "1.10.0"]
assert candidate(["1.0.0+b2", "1.0.0+b1"]) == ["1.0.0+b2", "1.0.0+b1"]
assert candidate([]) == []
assert candidate(["2.0.0-a", "2.0.0-0a", "2.0.0-1"]) == ["2.0.0-1", "2.0.0-0a", "2.0.0-a"]
assert candidate(["0.0.1-rc.1+x", "0.0.1", "0.0.1-rc.1"]) == ["0.0.1-rc.1+x", "0.0.1-rc.1", "0.0.1"]
assert candidate(["1.0.0-a", "1.0.0-Z"]) == ["1.0.0-Z", "1.0.0-a"]
assert candidate(["1.0.0-beta-2", "1.0.0-beta"]) == ["1.0.0-beta", "1.0.0-beta-2"]
assert candidate(["10.0.0", "9.99.99"]) == ["9.99.99", "10.0.0"]
""",
    ),
    P(
        "wrap_words",
        "Greedily wrap text into lines of at most `width` characters (`width` >= 1). Words are "
        "separated by any whitespace; words on a line are joined by one space, and a word goes on "
        "the current line if it fits, otherwise it starts a new line. A word longer than `width` "
        "starts a new line and is cut into pieces of exactly `width` characters; its last piece "
        "then acts as an ordinary word, so following words may join its line. Text without words "
        "gives an empty list.",
        r"""
def wrap_words(text: str, width: int) -> list:
    lines = []
    current = ""
    for word in text.split():
        if len(word) > width:
            if current:
                lines.append(current)
            while len(word) > width:
                lines.append(word[:width])
                word = word[width:]
            current = word
        elif not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines
""",
        r"""
assert candidate("the quick brown fox", 10) == ["the quick", "brown fox"]
assert candidate("", 5) == []
assert candidate("   ", 5) == []
assert candidate("a b c", 1) == ["a", "b", "c"]
assert candidate("hello", 5) == ["hello"]
assert candidate("abcdefgh ij", 3) == ["abc", "def", "gh", "ij"]
assert candidate("ab abcdefg c", 4) == ["ab", "abcd", "efg", "c"]
assert candidate("x  y\tz\nw", 3) == ["x y", "z w"]
assert candidate("abcdef", 3) == ["abc", "def"]
assert candidate("abcde f", 4) == ["abcd", "e f"]
""",
    ),
    P(
        "outline_numbers",
        "Number an indented outline. Each line's depth is its count of leading spaces divided by "
        "two; lines made only of spaces are skipped. The first numbered line must have depth 0, "
        "each line may be at most one level deeper than the previous one, and indentation must "
        "be even; otherwise return an empty list. Output each line as its hierarchical number, "
        "a dot, a space and the text without leading spaces, e.g. '1.2. Goals'. Numbering at a "
        "level restarts at 1 under each new parent.",
        r"""
def outline_numbers(lines: list) -> list:
    out = []
    counters = []
    for line in lines:
        text = line.lstrip(" ")
        if not text:
            continue
        indent = len(line) - len(text)
        if indent % 2:
            return []
        depth = indent // 2
        if depth > len(counters):
            return []
        del counters[depth + 1:]
        if depth == len(counters):
            counters.append(1)
        else:
            counters[depth] += 1
        out.append(".".join(str(c) for c in counters) + ". " + text)
    return out
""",
        r"""
assert candidate(["Intro", "  Scope", "  Goals", "Body"]) == ["1. Intro", "1.1. Scope", "1.2. Goals", "2. Body"]
assert candidate([]) == []
assert candidate(["  Sub"]) == []
assert candidate(["A", "    B"]) == []
assert candidate(["A", " B"]) == []
assert candidate(["A", "  B", "    C", "D", "  E"]) == ["1. A", "1.1. B", "1.1.1. C", "2. D", "2.1. E"]
assert candidate(["A", "   ", "  B"]) == ["1. A", "1.1. B"]
assert candidate(["A", "  B", "    C", "  D"]) == ["1. A", "1.1. B", "1.1.1. C", "1.2. D"]
""",
    ),
    P(
        "mask_long_numbers",
        "In `text`, replace every maximal run of ASCII digits (0-9) that is at least 8 digits long "
        "so that all but its last `keep` digits become '*'. Shorter runs and other characters "
        "(including non-ASCII digits) are unchanged. With keep 0 the whole run is masked; a "
        "keep larger than the run leaves it unchanged.",
        r"""
import re


def mask_long_numbers(text: str, keep: int = 4) -> str:
    def mask(match):
        digits = match.group(0)
        shown = digits[max(0, len(digits) - keep):]
        return "*" * (len(digits) - len(shown)) + shown

    return re.sub(r"[0-9]{8,}", mask, text)
""",
        r"""
assert candidate("card 1234567812345678 ok") == "card ************5678 ok"
assert candidate("call 5551234") == "call 5551234"
assert candidate("12345678", 0) == "********"
assert candidate("id:12345678/87654321", 2) == "id:******78/******21"
assert candidate("") == ""
assert candidate("1234-5678-9012") == "1234-5678-9012"
assert candidate("123456789", 20) == "123456789"
assert candidate("\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669") == "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
assert candidate("x1234567y") == "x1234567y"
""",
    ),
    P(
        "free_slots",
        "Given busy half-open intervals (s, e) — unsorted, possibly overlapping, possibly "
        "reaching outside the day, zero-length ones meaning nothing — return the free half-open "
        "intervals inside [start, end) that are at least `min_len` long (and never empty), as a "
        "sorted list of (start, end) tuples.",
        r"""
def free_slots(busy: list, start: int, end: int, min_len: int) -> list:
    spans = sorted((max(s, start), min(e, end)) for s, e in busy)
    free = []
    cursor = start
    for s, e in spans:
        if s >= e:
            continue
        if s > cursor and s - cursor >= min_len:
            free.append((cursor, s))
        cursor = max(cursor, e)
    if end > cursor and end - cursor >= min_len:
        free.append((cursor, end))
    return free
""",
        r"""
assert candidate([(9, 10), (12, 13)], 8, 17, 1) == [(8, 9), (10, 12), (13, 17)]
assert candidate([], 0, 10, 3) == [(0, 10)]
assert candidate([(0, 10)], 0, 10, 0) == []
assert candidate([(5, 7), (1, 3), (2, 6)], 0, 10, 2) == [(7, 10)]
assert candidate([(-5, 2), (8, 20)], 0, 10, 1) == [(2, 8)]
assert candidate([(3, 3)], 0, 5, 1) == [(0, 5)]
assert candidate([(2, 4)], 0, 6, 2) == [(0, 2), (4, 6)]
assert candidate([(1, 2)], 0, 4, 0) == [(0, 1), (2, 4)]
assert candidate([(20, 30)], 0, 10, 1) == [(0, 10)]
""",
    ),
    P(
        "peak_overlap",
        "Given closed integer intervals [a, b] with a <= b, return (point, count): the smallest "
        "integer point covered by the largest number of intervals, and that number. Intervals "
        "that only touch at an endpoint do overlap there. An empty list gives (0, 0).",
        r"""
def peak_overlap(intervals: list) -> tuple:
    events = []
    for a, b in intervals:
        events.append((a, 0))
        events.append((b, 1))
    events.sort()
    best = (0, 0)
    current = 0
    for x, kind in events:
        if kind == 0:
            current += 1
            if current > best[1]:
                best = (x, current)
        else:
            current -= 1
    return best
""",
        r"""
assert candidate([(1, 5), (2, 6), (4, 8)]) == (4, 3)
assert candidate([]) == (0, 0)
assert candidate([(1, 2), (2, 3)]) == (2, 2)
assert candidate([(1, 1)]) == (1, 1)
assert candidate([(5, 9), (1, 3), (6, 7), (2, 2)]) == (2, 2)
assert candidate([(-3, -1), (-2, 0)]) == (-2, 2)
assert candidate([(0, 10), (0, 10), (10, 12)]) == (10, 3)
""",
    ),
    P(
        "merge_close",
        "Merge closed integer intervals (a, b), a <= b, given in any order: two intervals join "
        "when the next one (by start) begins at most `gap` after the end of the merged interval "
        "so far (so overlapping intervals always join). Return the merged intervals as a sorted "
        "list of tuples.",
        r"""
def merge_close(intervals: list, gap: int) -> list:
    merged = []
    for a, b in sorted(intervals):
        if merged and a - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
""",
        r"""
assert candidate([(1, 3), (4, 6)], 0) == [(1, 3), (4, 6)]
assert candidate([(1, 3), (4, 6)], 1) == [(1, 6)]
assert candidate([(1, 3), (3, 5)], 0) == [(1, 5)]
assert candidate([(1, 10), (2, 3), (12, 15)], 1) == [(1, 10), (12, 15)]
assert candidate([], 5) == []
assert candidate([(5, 6), (1, 2)], 3) == [(1, 6)]
assert candidate([(0, 0), (0, 0)], 0) == [(0, 0)]
assert candidate([(1, 4), (2, 3), (5, 5)], 0) == [(1, 4), (5, 5)]
""",
    ),
    P(
        "assign_rooms",
        "Meetings are half-open (start, end) pairs. Process them by start time (ties in input "
        "order); each takes the lowest-numbered room that is free at its start (a room is free "
        "once its last meeting's end is <= the start), opening a new room numbered from 0 when "
        "none is free. Return each meeting's room, in input order.",
        r"""
import heapq


def assign_rooms(meetings: list) -> list:
    order = sorted(range(len(meetings)), key=lambda i: (meetings[i][0], i))
    busy = []
    free = []
    opened = 0
    rooms = [0] * len(meetings)
    for i in order:
        start, end = meetings[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            room = heapq.heappop(free)
        else:
            room = opened
            opened += 1
        rooms[i] = room
        heapq.heappush(busy, (end, room))
    return rooms
""",
        r"""
assert candidate([(0, 30), (5, 10), (15, 20)]) == [0, 1, 1]
assert candidate([]) == []
assert candidate([(1, 2), (2, 3)]) == [0, 0]
assert candidate([(5, 8), (1, 6), (1, 3)]) == [1, 0, 1]
assert candidate([(0, 10), (0, 10), (0, 10)]) == [0, 1, 2]
assert candidate([(0, 5), (1, 2), (3, 9), (5, 6)]) == [0, 1, 1, 0]
assert candidate([(10, 20), (0, 5), (6, 12)]) == [1, 0, 0]
assert candidate([(0, 3), (0, 2), (4, 5)]) == [0, 1, 0]
""",
    ),
    P(
        "cheapest_route",
        "In an undirected graph with nodes 0..n-1 and edges (u, v, w), w >= 0 (parallel edges "
        "allowed), return the route from `src` to `dst` as a list of nodes: the one with least "
        "total weight, among those the one with fewest edges, and among those the "
        "lexicographically smallest node list. Return [] when `dst` cannot be reached and [src] "
        "when src == dst.",
        r"""
import heapq


def cheapest_route(n: int, edges: list, src: int, dst: int) -> list:
    adjacent = [[] for _ in range(n)]
    for u, v, w in edges:
        adjacent[u].append((v, w))
        adjacent[v].append((u, w))
    heap = [(0, 0, [src])]
    settled = set()
    while heap:
        cost, hops, path = heapq.heappop(heap)
        node = path[-1]
        if node in settled:
            continue
        settled.add(node)
        if node == dst:
            return path
        for v, w in adjacent[node]:
            if v not in settled:
                heapq.heappush(heap, (cost + w, hops + 1, path + [v]))
    return []
""",
        r"""
assert candidate(4, [(0, 1, 1), (1, 3, 1), (0, 2, 1), (2, 3, 1)], 0, 3) == [0, 1, 3]
assert candidate(3, [(0, 1, 1), (1, 2, 1), (0, 2, 2)], 0, 2) == [0, 2]
assert candidate(3, [(0, 1, 5)], 0, 2) == []
assert candidate(3, [(0, 1, 5)], 1, 1) == [1]
assert candidate(3, [(0, 1, 0), (1, 2, 0), (0, 2, 0)], 0, 2) == [0, 2]
assert candidate(3, [(0, 1, 1), (1, 2, 1), (0, 2, 5)], 0, 2) == [0, 1, 2]
assert candidate(3, [(0, 1, 5), (0, 1, 2), (1, 2, 1)], 0, 2) == [0, 1, 2]
assert candidate(5, [(0, 3, 1), (3, 4, 1), (0, 2, 1), (2, 4, 1), (0, 1, 1), (1, 4, 1)], 0, 4) == [0, 1, 4]
assert candidate(4, [(3, 2, 1), (2, 1, 1), (3, 0, 4), (0, 1, 1)], 3, 1) == [3, 2, 1]
""",
    ),
    P(
        "lex_topo_order",
        "Nodes are 0..n-1 and each pair (a, b) in `deps` means a must come before b (pairs may "
        "repeat). Return the lexicographically smallest ordering of all nodes that respects "
        "every pair, or [] if none exists (a cycle, including a node that must precede itself).",
        r"""
import heapq


def lex_topo_order(n: int, deps: list) -> list:
    indegree = [0] * n
    after = [set() for _ in range(n)]
    for a, b in deps:
        if b not in after[a]:
            after[a].add(b)
            indegree[b] += 1
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        u = heapq.heappop(ready)
        order.append(u)
        for v in after[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                heapq.heappush(ready, v)
    return order if len(order) == n else []
""",
        r"""
assert candidate(4, [(1, 0), (2, 0), (3, 1)]) == [2, 3, 1, 0]
assert candidate(3, []) == [0, 1, 2]
assert candidate(2, [(0, 1), (1, 0)]) == []
assert candidate(1, [(0, 0)]) == []
assert candidate(0, []) == []
assert candidate(3, [(2, 1), (2, 1)]) == [0, 2, 1]
assert candidate(5, [(4, 0), (3, 0), (1, 2)]) == [1, 2, 3, 4, 0]
assert candidate(4, [(3, 2), (2, 1), (1, 0)]) == [3, 2, 1, 0]
""",
    ),
    P(
        "component_sizes",
        "Nodes are 0..n-1 and `edges` are undirected pairs (self-loops and repeats allowed). "
        "Return the sizes of the connected components, largest first; an isolated node is a "
        "component of size 1.",
        r"""
def component_sizes(n: int, edges: list) -> list:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        parent[find(u)] = find(v)
    sizes = {}
    for x in range(n):
        root = find(x)
        sizes[root] = sizes.get(root, 0) + 1
    return sorted(sizes.values(), reverse=True)
""",
        r"""
assert candidate(5, [(0, 1), (1, 2), (3, 4)]) == [3, 2]
assert candidate(3, []) == [1, 1, 1]
assert candidate(0, []) == []
assert candidate(4, [(0, 0), (1, 1)]) == [1, 1, 1, 1]
assert candidate(4, [(0, 1), (0, 1), (2, 3), (1, 3)]) == [4]
assert candidate(6, [(5, 4), (4, 3), (1, 0)]) == [3, 2, 1]
""",
    ),
    P(
        "two_coloring",
        "Colour nodes 0..n-1 with 0 and 1 so that every undirected edge joins different colours, "
        "giving the lowest-numbered node of each connected component colour 0. Return the list "
        "of colours, or [] when no such colouring exists (a self-loop makes it impossible).",
        r"""
from collections import deque


def two_coloring(n: int, edges: list) -> list:
    adjacent = [[] for _ in range(n)]
    for u, v in edges:
        adjacent[u].append(v)
        adjacent[v].append(u)
    colour = [-1] * n
    for first in range(n):
        if colour[first] != -1:
            continue
        colour[first] = 0
        queue = deque([first])
        while queue:
            u = queue.popleft()
            for v in adjacent[u]:
                if colour[v] == -1:
                    colour[v] = 1 - colour[u]
                    queue.append(v)
                elif colour[v] == colour[u]:
                    return []
    return colour
""",
        r"""
assert candidate(4, [(0, 1), (1, 2), (2, 3)]) == [0, 1, 0, 1]
assert candidate(3, [(0, 1), (1, 2), (2, 0)]) == []
assert candidate(3, []) == [0, 0, 0]
assert candidate(2, [(1, 1)]) == []
assert candidate(5, [(3, 4), (1, 4)]) == [0, 0, 0, 0, 1]
assert candidate(0, []) == []
assert candidate(4, [(0, 1), (0, 1), (2, 3)]) == [0, 1, 0, 1]
assert candidate(6, [(0, 1), (2, 3), (3, 4), (4, 5), (5, 2)]) == [0, 1, 0, 1, 0, 1]
""",
    ),
    P(
        "portal_steps",
        "A grid of strings holds 'S' (start), 'E' (exit), '#' (wall), '.' (floor) and lowercase "
        "letters, which are floor cells acting as portals: each letter appears exactly twice, and "
        "from one of its cells you may jump to the other in one step. Otherwise each step moves to "
        "an orthogonally adjacent non-wall cell. Rows may differ in length. Return the fewest "
        "steps from S to E, or -1 if E cannot be reached or there is no S.",
        r"""
from collections import deque


def portal_steps(grid: list) -> int:
    start = None
    portals = {}
    for r, row in enumerate(grid):
        for c, ch in enumerate(row):
            if ch == "S":
                start = (r, c)
            elif ch.islower():
                portals.setdefault(ch, []).append((r, c))
    if start is None:
        return -1
    dist = {start: 0}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        here = grid[r][c]
        if here == "E":
            return dist[(r, c)]
        moves = [(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)]
        if here.islower():
            moves += [cell for cell in portals[here] if cell != (r, c)]
        for nr, nc in moves:
            if 0 <= nr < len(grid) and 0 <= nc < len(grid[nr]) and grid[nr][nc] != "#" and (nr, nc) not in dist:
                dist[(nr, nc)] = dist[(r, c)] + 1
                queue.append((nr, nc))
    return -1
""",
        r"""
assert candidate(["S.E"]) == 2
assert candidate(["S#E"]) == -1
assert candidate(["Sa#", "###", "a.E"]) == 4
assert candidate(["Sa.E", "....", "a..."]) == 3
assert candidate(["..E"]) == -1
assert candidate(["SE"]) == 1
assert candidate(["S.a#E", "####.", "a...."]) == 9
assert candidate([]) == -1
assert candidate(["S#E", ".", "..."]) == -1
assert candidate(["S...", ".", "....", "..E"]) == 5
""",
    ),
    P(
        "rho_shape",
        "`f` maps each index 0..len(f)-1 to another index. Starting at `start` and repeatedly "
        "applying f, the walk eventually repeats. Return (tail, cycle): the number of steps before "
        "the walk first enters its cycle, and the cycle's length.",
        r"""
def rho_shape(f: list, start: int) -> tuple:
    seen = {}
    x = start
    step = 0
    while x not in seen:
        seen[x] = step
        x = f[x]
        step += 1
    return (seen[x], step - seen[x])
""",
        r"""
assert candidate([1, 2, 3, 1], 0) == (1, 3)
assert candidate([0], 0) == (0, 1)
assert candidate([1, 0], 0) == (0, 2)
assert candidate([1, 2, 2], 0) == (2, 1)
assert candidate([3, 3, 3, 4, 5, 3], 0) == (1, 3)
assert candidate([1, 2, 0, 0], 3) == (1, 3)
assert candidate(list(range(1, 1000)) + [500], 0) == (500, 500)
""",
    ),
    P(
        "ways_avoiding",
        "Count the ordered sequences of steps, each taken from the distinct positive sizes in "
        "`steps`, that climb from stair 0 to stair n without ever standing on a stair listed in "
        "`forbidden` (if stair 0 or n is forbidden the answer is 0). n = 0 has one (empty) "
        "sequence. Return the count modulo 1_000_000_007.",
        r"""
def ways_avoiding(n: int, steps: list, forbidden: list) -> int:
    mod = 1_000_000_007
    blocked = set(forbidden)
    ways = [0] * (n + 1)
    ways[0] = 0 if 0 in blocked else 1
    for i in range(1, n + 1):
        if i not in blocked:
            ways[i] = sum(ways[i - s] for s in steps if s <= i) % mod
    return ways[n]
""",
        r"""
assert candidate(4, [1, 2], []) == 5
assert candidate(4, [1, 2], [2]) == 1
assert candidate(0, [1], []) == 1
assert candidate(5, [2], []) == 0
assert candidate(3, [1, 2], [3]) == 0
assert candidate(10, [1, 3, 5], [4, 7]) == 11
assert candidate(2, [1, 2], [0]) == 0
assert candidate(1000, [1, 2], []) == 107579939
""",
    ),
    P(
        "runs_limited",
        "Count the strings of length n over an alphabet of c letters in which no letter appears "
        "more than r times in a row (r >= 1). The empty string counts once. Return the count "
        "modulo 1_000_000_007.",
        r"""
def runs_limited(n: int, c: int, r: int) -> int:
    mod = 1_000_000_007
    if n == 0:
        return 1
    ending = [0] * (r + 1)
    ending[1] = c % mod
    for _ in range(n - 1):
        total = sum(ending) % mod
        nxt = [0] * (r + 1)
        nxt[1] = total * (c - 1) % mod
        for length in range(2, r + 1):
            nxt[length] = ending[length - 1]
        ending = nxt
    return sum(ending) % mod
""",
        r"""
assert candidate(3, 2, 1) == 2
assert candidate(3, 2, 2) == 6
assert candidate(0, 5, 1) == 1
assert candidate(4, 1, 3) == 0
assert candidate(3, 1, 3) == 1
assert candidate(2, 3, 1) == 6
assert candidate(5, 3, 5) == 243
assert candidate(1, 0, 1) == 0
assert candidate(50, 26, 2) == 831776668
""",
    ),
    P(
        "min_raggedness",
        "Break words (given by their lengths) into lines, in order, with one space between words "
        "on a line and no line longer than `width`. The cost of a line is (width - its length) "
        "squared, except the last line, which costs nothing. Return the least total cost, 0 for "
        "no words, or -1 if some word is longer than `width`.",
        r"""
def min_raggedness(word_lengths: list, width: int) -> int:
    n = len(word_lengths)
    if any(w > width for w in word_lengths):
        return -1
    best = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i] = None
        length = -1
        for j in range(i, n):
            length += word_lengths[j] + 1
            if length > width:
                break
            cost = (0 if j == n - 1 else (width - length) ** 2) + best[j + 1]
            if best[i] is None or cost < best[i]:
                best[i] = cost
    return best[0]
""",
        r"""
assert candidate([], 10) == 0
assert candidate([3, 2, 2, 5], 6) == 10
assert candidate([7], 5) == -1
assert candidate([5], 5) == 0
assert candidate([1, 1, 1], 5) == 0
assert candidate([2, 2, 2, 2], 5) == 0
assert candidate([3, 3, 3, 3], 8) == 1
assert candidate([2, 2, 2], 4) == 8
""",
    ),
    P(
        "muddy_paths",
        "A grid of strings has '.' (dry), '~' (mud) and '#' (blocked). Count the paths from the "
        "top-left to the bottom-right cell that move only right or down, avoid blocked cells, and "
        "step on at most k mud cells (the first and last cells count). Return the count modulo "
        "1_000_000_007.",
        r"""
def muddy_paths(grid: list, k: int) -> int:
    mod = 1_000_000_007
    rows, cols = len(grid), len(grid[0])
    count = [[[0] * (k + 1) for _ in range(cols)] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            cell = grid[r][c]
            if cell == "#":
                continue
            mud = 1 if cell == "~" else 0
            if r == 0 and c == 0:
                if mud <= k:
                    count[0][0][mud] = 1
                continue
            for used in range(mud, k + 1):
                total = 0
                if r > 0:
                    total += count[r - 1][c][used - mud]
                if c > 0:
                    total += count[r][c - 1][used - mud]
                count[r][c][used] = total % mod
    return sum(count[rows - 1][cols - 1]) % mod
""",
        r"""
assert candidate(["..", ".."], 0) == 2
assert candidate(["~."], 0) == 0
assert candidate(["~."], 1) == 1
assert candidate([".~", ".."], 0) == 1
assert candidate([".#", "#."], 5) == 0
assert candidate(["...", ".~.", "..."], 0) == 2
assert candidate(["...", ".~.", "..."], 1) == 6
assert candidate(["."], 0) == 1
assert candidate(["." * 20] * 20, 0) == 345263555
assert candidate([".~~", "~~.", "..."], 1) == 1
""",
    ),
    P(
        "count_exact_subsets",
        "Count the subsets of `weights` (chosen by position, so equal weights are different "
        "items) whose sum is exactly `target`. Weights are non-negative; the empty subset sums "
        "to 0.",
        r"""
def count_exact_subsets(weights: list, target: int) -> int:
    if target < 0:
        return 0
    ways = [1] + [0] * target
    for w in weights:
        for total in range(target, w - 1, -1):
            ways[total] += ways[total - w]
    return ways[target]
""",
        r"""
assert candidate([1, 2, 3], 3) == 2
assert candidate([], 0) == 1
assert candidate([], 5) == 0
assert candidate([0, 0, 1], 1) == 4
assert candidate([2, 2, 2], 4) == 3
assert candidate([5], 3) == 0
assert candidate([1, 1, 1, 1], 2) == 6
assert candidate([3, 4], -1) == 0
assert candidate([0], 0) == 2
assert candidate([1] * 40, 20) == 137846528820
""",
    ),
    P(
        "best_windows",
        "Choose at most k non-overlapping windows, each exactly `length` consecutive values of "
        "`values` (which may be negative), to maximise the total of the chosen values. Choosing "
        "no window gives 0. Return the maximum total.",
        r"""
def best_windows(values: list, length: int, k: int) -> int:
    n = len(values)
    prefix = [0]
    for v in values:
        prefix.append(prefix[-1] + v)
    best = [[0] * (k + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, k + 1):
            best[i][j] = max(best[i - 1][j], best[i][j - 1])
            if i >= length:
                best[i][j] = max(best[i][j], best[i - length][j - 1] + prefix[i] - prefix[i - length])
    return best[n][k]
""",
        r"""
assert candidate([1, 2, 3, 4, 5], 2, 1) == 9
assert candidate([1, 2, 3, 4, 5], 2, 2) == 14
assert candidate([-1, -2, -3], 1, 2) == 0
assert candidate([5, -10, 5], 1, 3) == 10
assert candidate([1, 2], 3, 1) == 0
assert candidate([3, 3, 3, 3], 2, 5) == 12
assert candidate([], 1, 1) == 0
assert candidate([4, -1, 4, -100, 2, 2], 3, 2) == 7
assert candidate([2, 1, 2, 1, 2], 2, 2) == 6
assert candidate([1, 9, 1, 9, 1], 2, 2) == 20
""",
    ),
    P(
        "trailing_zeros_factorial",
        "Return the number of trailing zeros of n! (n >= 0) written in base `base` (base >= 2).",
        r"""
def trailing_zeros_factorial(n: int, base: int) -> int:
    factors = {}
    b = base
    p = 2
    while p * p <= b:
        while b % p == 0:
            factors[p] = factors.get(p, 0) + 1
            b //= p
        p += 1
    if b > 1:
        factors[b] = factors.get(b, 0) + 1
    best = None
    for p, e in factors.items():
        count = 0
        q = p
        while q <= n:
            count += n // q
            q *= p
        zeros = count // e
        best = zeros if best is None else min(best, zeros)
    return best
""",
        r"""
assert candidate(10, 10) == 2
assert candidate(5, 2) == 3
assert candidate(10, 12) == 4
assert candidate(100, 10) == 24
assert candidate(0, 7) == 0
assert candidate(6, 7) == 0
assert candidate(49, 49) == 4
assert candidate(25, 16) == 5
assert candidate(1000, 97) == 10
assert candidate(20, 1000) == 1
""",
    ),
    P(
        "mod_inverse",
        "Return the x in [0, m) with a * x congruent to 1 modulo m (m >= 1, a any integer), or -1 "
        "when there is none. Modulo 1 every number is congruent, so the answer is 0.",
        r"""
def mod_inverse(a: int, m: int) -> int:
    if m == 1:
        return 0
    old_r, r = a % m, m
    old_s, s = 1, 0
    while r:
        q = old_r // r
        old_r, r = r, old_r - q * r
        old_s, s = s, old_s - q * s
    if old_r != 1:
        return -1
    return old_s % m
""",
        r"""
assert candidate(3, 11) == 4
assert candidate(10, 17) == 12
assert candidate(6, 9) == -1
assert candidate(-3, 11) == 7
assert candidate(5, 1) == 0
assert candidate(0, 7) == -1
assert candidate(1, 2) == 1
assert candidate(4, 4) == -1
assert candidate(123456789, 1000000007) == 18633540
""",
    ),
    P(
        "smallest_multiple_using",
        "Return, as a decimal string without leading zeros, the smallest positive multiple of n "
        "(n >= 1) whose digits all come from `digits` (distinct integers 0-9), or '' if there is "
        "none.",
        r"""
from collections import deque


def smallest_multiple_using(n: int, digits: list) -> str:
    digits = sorted(set(digits))
    parent = {}
    queue = deque()
    for d in digits:
        if d != 0 and d % n not in parent:
            parent[d % n] = (None, d)
            queue.append(d % n)
    while queue:
        r = queue.popleft()
        if r == 0:
            break
        for d in digits:
            nr = (r * 10 + d) % n
            if nr not in parent:
                parent[nr] = (r, d)
                queue.append(nr)
    if 0 not in parent:
        return ""
    out = []
    r = 0
    while r is not None:
        r, d = parent[r]
        out.append(str(d))
    return "".join(reversed(out))
""",
        r"""
assert candidate(3, [1]) == "111"
assert candidate(7, [0, 1]) == "1001"
assert candidate(2, [1, 3, 5]) == ""
assert candidate(5, [0]) == ""
assert candidate(1, [9]) == "9"
assert candidate(12, [1, 2]) == "12"
assert candidate(9, [1]) == "111111111"
assert candidate(10, [0, 5]) == "50"
assert candidate(6, [4]) == "444"
assert candidate(999, [1]) == "1" * 27
""",
    ),
    P(
        "factor_string",
        "Write n >= 1 as its prime factorisation: primes in increasing order joined by ' * ', "
        "each as 'p' or 'p^e' when its exponent e is above 1. n = 1 gives '1'.",
        r"""
def factor_string(n: int) -> str:
    if n == 1:
        return "1"
    parts = []
    p = 2
    while p * p <= n:
        e = 0
        while n % p == 0:
            n //= p
            e += 1
        if e:
            parts.append(f"{p}^{e}" if e > 1 else str(p))
        p += 1
    if n > 1:
        parts.append(str(n))
    return " * ".join(parts)
""",
        r"""
assert candidate(360) == "2^3 * 3^2 * 5"
assert candidate(1) == "1"
assert candidate(97) == "97"
assert candidate(1024) == "2^10"
assert candidate(210) == "2 * 3 * 5 * 7"
assert candidate(999999937) == "999999937"
assert candidate(49) == "7^2"
assert candidate(1999999874) == "2 * 999999937"
assert candidate(12) == "2^2 * 3"
""",
    ),
    P(
        "balanced_ternary",
        "Write the integer n in balanced ternary, most significant digit first, using '+' for 1, "
        "'0' for 0 and '-' for -1. Zero is '0'; negative numbers have no sign character.",
        r"""
def balanced_ternary(n: int) -> str:
    if n == 0:
        return "0"
    digits = []
    while n:
        r = n % 3
        if r == 0:
            digits.append("0")
            n //= 3
        elif r == 1:
            digits.append("+")
            n = (n - 1) // 3
        else:
            digits.append("-")
            n = (n + 1) // 3
    return "".join(reversed(digits))
""",
        r"""
assert candidate(0) == "0"
assert candidate(1) == "+"
assert candidate(2) == "+-"
assert candidate(3) == "+0"
assert candidate(-1) == "-"
assert candidate(5) == "+--"
assert candidate(8) == "+0-"
assert candidate(-4) == "--"
assert candidate(13) == "+++"
assert candidate(100) == "++-0+"
""",
    ),
    P(
        "coprime_pairs",
        "Count the pairs (a, b) with 1 <= a < b <= n and gcd(a, b) = 1. For n < 2 there are none.",
        r"""
def coprime_pairs(n: int) -> int:
    if n < 2:
        return 0
    phi = list(range(n + 1))
    for p in range(2, n + 1):
        if phi[p] == p:
            for m in range(p, n + 1, p):
                phi[m] -= phi[m] // p
    return sum(phi[2:])
""",
        r"""
assert candidate(0) == 0
assert candidate(1) == 0
assert candidate(2) == 1
assert candidate(5) == 9
assert candidate(10) == 31
assert candidate(100) == 3043
assert candidate(-7) == 0
assert candidate(100000) == 3039650753
""",
    ),
    P(
        "teller_waits",
        "Customers arrive at the times in `arrivals` (non-decreasing) and need the service times "
        "in `durations`; there are `tellers` tellers numbered from 0. In arrival order, a "
        "customer goes to the lowest-numbered teller that is idle at the arrival time; if none is "
        "idle, to the teller that becomes free first (ties: lowest number) and waits for it. "
        "Return a list of (teller, waiting time) tuples in input order.",
        r"""
def teller_waits(arrivals: list, durations: list, tellers: int) -> list:
    free_at = [0] * tellers
    result = []
    for t, d in zip(arrivals, durations):
        idle = [i for i in range(tellers) if free_at[i] <= t]
        if idle:
            teller = idle[0]
        else:
            teller = min(range(tellers), key=lambda i: (free_at[i], i))
        start = max(t, free_at[teller])
        result.append((teller, start - t))
        free_at[teller] = start + d
    return result
""",
        r"""
assert candidate([0, 0, 0], [5, 5, 5], 2) == [(0, 0), (1, 0), (0, 5)]
assert candidate([0, 0, 0, 0], [4, 2, 4, 1], 2) == [(0, 0), (1, 0), (1, 2), (0, 4)]
assert candidate([], [], 3) == []
assert candidate([0, 1, 2], [1, 1, 1], 1) == [(0, 0), (0, 0), (0, 0)]
assert candidate([0, 0, 1], [3, 1, 1], 1) == [(0, 0), (0, 3), (0, 3)]
assert candidate([1, 2, 3], [10, 10, 1], 3) == [(0, 0), (1, 0), (2, 0)]
assert candidate([0, 0, 4], [3, 1, 1], 2) == [(0, 0), (1, 0), (0, 0)]
assert candidate([0, 0, 1], [2, 2, 1], 2) == [(0, 0), (1, 0), (0, 1)]
""",
    ),
    P(
        "life_steps",
        "Run Conway's Game of Life (birth on exactly 3 neighbours, survival on 2 or 3) on an "
        "unbounded grid for `steps` generations, starting from the live cells (x, y) in `cells` "
        "(duplicates allowed). Return the live cells as a sorted list of tuples.",
        r"""
from collections import Counter


def life_steps(cells: list, steps: int) -> list:
    live = {tuple(cell) for cell in cells}
    for _ in range(steps):
        counts = Counter(
            (x + dx, y + dy) for x, y in live for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy
        )
        live = {cell for cell, k in counts.items() if k == 3 or (k == 2 and cell in live)}
    return sorted(live)
""",
        r"""
assert candidate([(0, 0), (1, 0), (2, 0)], 1) == [(1, -1), (1, 0), (1, 1)]
assert candidate([(0, 0), (1, 0), (2, 0)], 2) == [(0, 0), (1, 0), (2, 0)]
assert candidate([(0, 0), (0, 1), (1, 0), (1, 1)], 5) == [(0, 0), (0, 1), (1, 0), (1, 1)]
assert candidate([], 3) == []
assert candidate([(5, 5)], 1) == []
assert candidate([(2, 0), (0, 0), (1, 0), (0, 0)], 0) == [(0, 0), (1, 0), (2, 0)]
assert candidate([(1, 0), (2, 1), (0, 2), (1, 2), (2, 2)], 4) == [(1, 3), (2, 1), (2, 3), (3, 2), (3, 3)]
assert candidate([(0, 0), (1, 1)], 1) == []
""",
    ),
    P(
        "rectilinear_area",
        "A turtle starts at (0, 0) facing north and follows space-separated commands: 'L' and "
        "'R' turn 90 degrees left or right, 'F<n>' moves n units forward. If it ends back at the "
        "origin, return the absolute value of the signed (shoelace) area enclosed by its path; "
        "otherwise return -1. No commands encloses area 0.",
        r"""
def rectilinear_area(commands: str) -> int:
    x = y = 0
    dx, dy = 0, 1
    twice = 0
    for command in commands.split():
        if command == "L":
            dx, dy = -dy, dx
        elif command == "R":
            dx, dy = dy, -dx
        else:
            steps = int(command[1:])
            nx, ny = x + dx * steps, y + dy * steps
            twice += x * ny - nx * y
            x, y = nx, ny
    if (x, y) != (0, 0):
        return -1
    return abs(twice) // 2
""",
        r"""
assert candidate("F2 R F3 R F2 R F3") == 6
assert candidate("") == 0
assert candidate("F1") == -1
assert candidate("F2 L F2 L F2 L F2") == 4
assert candidate("R R") == 0
assert candidate("F0") == 0
assert candidate("F2 R F1 R F1 L F1 R F1 R F2") == 3
assert candidate("F10 R F10 R F10 R F9") == -1
assert candidate("R F2 L F1 L F2 L F1") == 2
""",
    ),
    P(
        "clock_faults",
        "Simulate CLOCK page replacement with `frames` slots (frames >= 1), all empty at first, "
        "and a hand at slot 0. Each slot has a reference bit; an empty slot's bit is 0. On a hit "
        "the page's bit becomes 1. On a miss, while the slot under the hand has bit 1, clear it "
        "and advance the hand (wrapping around); then load the page into that slot with bit 1 "
        "and advance the hand. Return the number of misses for the page sequence `pages`.",
        r"""
def clock_faults(frames: int, pages: list) -> int:
    slots = [None] * frames
    bits = [0] * frames
    hand = 0
    faults = 0
    for page in pages:
        if page in slots:
            bits[slots.index(page)] = 1
            continue
        faults += 1
        while bits[hand]:
            bits[hand] = 0
            hand = (hand + 1) % frames
        slots[hand] = page
        bits[hand] = 1
        hand = (hand + 1) % frames
    return faults
""",
        r"""
assert candidate(3, [1, 2, 3, 4]) == 4
assert candidate(1, [1, 1, 2, 1]) == 3
assert candidate(3, []) == 0
assert candidate(2, [1, 2, 1, 3, 1]) == 4
assert candidate(2, [1, 2, 3, 2, 1]) == 4
assert candidate(4, [1, 2, 3, 1, 2, 3]) == 3
assert candidate(3, [1, 2, 3, 1, 4, 5]) == 5
assert candidate(2, [7, 7, 7]) == 1
""",
    ),
    P(
        "token_bucket",
        "A rate limiter's bucket holds at most `capacity` tokens and starts full. One token is "
        "added at each time that is a positive multiple of `refill_every` (tokens beyond capacity "
        "are lost); a refill at time t happens before requests at time t. Each request, at the "
        "non-decreasing times in `times`, is accepted and takes a token if one is there, and is "
        "rejected otherwise. Return the list of accept (True) / reject (False) decisions.",
        r"""
def token_bucket(times: list, capacity: int, refill_every: int) -> list:
    tokens = capacity
    refills = 0
    decisions = []
    for t in times:
        due = t // refill_every
        tokens = min(capacity, tokens + due - refills)
        refills = due
        if tokens > 0:
            tokens -= 1
            decisions.append(True)
        else:
            decisions.append(False)
    return decisions
""",
        r"""
assert candidate([0, 0, 0], 2, 10) == [True, True, False]
assert candidate([0, 0, 10], 2, 10) == [True, True, True]
assert candidate([], 3, 5) == []
assert candidate([0, 1, 2, 3], 1, 2) == [True, False, True, False]
assert candidate([100], 1, 1) == [True]
assert candidate([5, 5, 5, 5], 3, 1) == [True, True, True, False]
assert candidate([0, 30, 30, 30, 30], 2, 10) == [True, True, True, False, False]
assert candidate([0, 10], 0, 1) == [False, False]
assert candidate([9, 9, 19, 19], 1, 10) == [True, False, True, False]
""",
    ),
    P(
        "run_stack_program",
        "Run a stack-machine program (a list of instruction strings) and return the final stack, "
        "bottom first. Instructions: 'PUSH n' (n an integer, optionally negative), 'POP', 'ADD', "
        "'SUB' (second from top minus top), 'MUL', 'DUP', 'SWAP', 'JZ k' (pop; if it was 0 jump to "
        "instruction k), 'JMP k', 'HALT'. Execution starts at 0 and ends at HALT or when the "
        "program counter reaches len(program). Before executing an instruction, check in order: "
        "if 10,000 instructions have already run return 'error: step limit'; if it is unknown, "
        "lowercase, or has a wrong or malformed argument return 'error: bad instruction at P'; if "
        "it is a jump whose target is outside 0..len(program) return 'error: bad jump at P'; if "
        "the stack holds too few values return 'error: underflow at P' (P is the instruction's "
        "index).",
        r"""
import re

_ARITY = {"PUSH": 1, "POP": 0, "ADD": 0, "SUB": 0, "MUL": 0, "DUP": 0, "SWAP": 0, "JZ": 1, "JMP": 1, "HALT": 0}
_NEEDS = {"POP": 1, "ADD": 2, "SUB": 2, "MUL": 2, "DUP": 1, "SWAP": 2, "JZ": 1}


def run_stack_program(program: list) -> list:
    stack = []
    pc = 0
    executed = 0
    while pc < len(program):
        if executed == 10_000:
            return "error: step limit"
        executed += 1
        parts = program[pc].split()
        op, args = (parts[0], parts[1:]) if parts else ("", [])
        if op not in _ARITY or len(args) != _ARITY[op] or (args and not re.fullmatch(r"-?[0-9]+", args[0])):
            return f"error: bad instruction at {pc}"
        if op in ("JZ", "JMP") and not 0 <= int(args[0]) <= len(program):
            return f"error: bad jump at {pc}"
        if len(stack) < _NEEDS.get(op, 0):
            return f"error: underflow at {pc}"
        nxt = pc + 1
        if op == "HALT":
            break
        if op == "PUSH":
            stack.append(int(args[0]))
        elif op == "POP":
            stack.pop()
        elif op in ("ADD", "SUB", "MUL"):
            b = stack.pop()
            a = stack.pop()
            stack.append(a + b if op == "ADD" else a - b if op == "SUB" else a * b)
        elif op == "DUP":
            stack.append(stack[-1])
        elif op == "SWAP":
            stack[-1], stack[-2] = stack[-2], stack[-1]
        elif op == "JMP":
            nxt = int(args[0])
        elif op == "JZ" and stack.pop() == 0:
            nxt = int(args[0])
        pc = nxt
    return stack
""",
        r"""
assert candidate(["PUSH 2", "PUSH 3", "ADD"]) == [5]
assert candidate(["PUSH 2", "PUSH 5", "SUB"]) == [-3]
assert candidate([]) == []
assert candidate(["POP"]) == "error: underflow at 0"
assert candidate(["PUSH 1", "JMP 0"]) == "error: step limit"
assert candidate(["PUSH 3", "DUP", "JZ 6", "PUSH -1", "ADD", "JMP 1", "PUSH 42"]) == [0, 42]
assert candidate(["PUSH 1", "HALT", "PUSH 2"]) == [1]
assert candidate(["push 1"]) == "error: bad instruction at 0"
assert candidate(["PUSH x"]) == "error: bad instruction at 0"
assert candidate(["PUSH 0", "JZ 5"]) == "error: bad jump at 1"
assert candidate(["PUSH 1", "JMP 2"]) == [1]
assert candidate(["PUSH 4", "PUSH 6", "SWAP", "SUB"]) == [2]
assert candidate(["PUSH 7", "DUP", "MUL"]) == [49]
assert candidate(["JZ 0"]) == "error: underflow at 0"
assert candidate(["ADD 1"]) == "error: bad instruction at 0"
""",
    ),
    P(
        "fifo_profit",
        "Process trades ('buy' or 'sell', quantity, price) in order. Buys add lots; a sell "
        "consumes the oldest lots first and realises (sell price - lot price) per unit. A sell of "
        "more than is held sells only what is held. Return (realised profit, quantity still held).",
        r"""
from collections import deque


def fifo_profit(trades: list) -> tuple:
    lots = deque()
    profit = 0
    for side, qty, price in trades:
        if side == "buy":
            if qty > 0:
                lots.append([qty, price])
            continue
        while qty > 0 and lots:
            take = min(qty, lots[0][0])
            profit += take * (price - lots[0][1])
            lots[0][0] -= take
            qty -= take
            if lots[0][0] == 0:
                lots.popleft()
    return (profit, sum(q for q, _ in lots))
""",
        r"""
assert candidate([("buy", 10, 5), ("sell", 4, 8)]) == (12, 6)
assert candidate([("buy", 5, 10), ("buy", 5, 20), ("sell", 7, 15)]) == (15, 3)
assert candidate([]) == (0, 0)
assert candidate([("sell", 3, 10)]) == (0, 0)
assert candidate([("buy", 2, 10), ("sell", 5, 12), ("buy", 1, 1)]) == (4, 1)
assert candidate([("buy", 1, 100), ("sell", 1, 50)]) == (-50, 0)
assert candidate([("buy", 3, 1), ("buy", 3, 2), ("sell", 3, 3), ("sell", 3, 3)]) == (9, 0)
assert candidate([("buy", 0, 5), ("sell", 1, 9)]) == (0, 0)
""",
    ),
    P(
        "flatten_keys",
        "Flatten nested dicts and lists inside the dict `data` into one dict whose keys are "
        "paths: the keys along the way (converted with str) and list indices (in decimal) joined "
        "by `sep`. Non-empty dicts and lists are descended into; everything else, including "
        "empty dicts, empty lists and tuples, is a leaf value. An empty `data` gives {}.",
        r"""
def flatten_keys(data: dict, sep: str = ".") -> dict:
    out = {}

    def walk(value, path):
        if isinstance(value, dict) and value:
            items = [(str(k), v) for k, v in value.items()]
        elif isinstance(value, list) and value:
            items = [(str(i), v) for i, v in enumerate(value)]
        else:
            out[path] = value
            return
        for key, child in items:
            walk(child, key if path is None else path + sep + key)

    if data:
        walk(data, None)
    return out
""",
        r"""
assert candidate({"a": {"b": 1, "c": [2, 3]}}) == {"a.b": 1, "a.c.0": 2, "a.c.1": 3}
assert candidate({}) == {}
assert candidate({"x": {}}) == {"x": {}}
assert candidate({"x": []}) == {"x": []}
assert candidate({"a": {"b": {"c": None}}}, "/") == {"a/b/c": None}
assert candidate({1: {2: "v"}}) == {"1.2": "v"}
assert candidate({"": {"k": 1}}) == {".k": 1}
assert candidate({"l": [{"m": 1}, [4]]}) == {"l.0.m": 1, "l.1.0": 4}
assert candidate({"t": (1, 2)}) == {"t": (1, 2)}
""",
    ),
    P(
        "deep_merge",
        "Return a new dict that merges `override` into `base`: where both hold dicts, merge them "
        "recursively; where both hold lists, concatenate (base first); an override value of None "
        "removes the key; any other override value replaces the base value. Neither input is "
        "modified and the result shares no mutable object with them.",
        r"""
import copy


def deep_merge(base: dict, override: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = result[key] + copy.deepcopy(value)
        else:
            result[key] = copy.deepcopy(value)
    return result
""",
        r"""
assert candidate({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}) == {"a": 1, "b": {"c": 2, "d": 3}}
assert candidate({"a": [1]}, {"a": [2]}) == {"a": [1, 2]}
assert candidate({"a": {"b": 1}}, {"a": 5}) == {"a": 5}
assert candidate({"a": 1, "b": 2}, {"a": None}) == {"b": 2}
assert candidate({}, {"x": None}) == {}
assert candidate({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": None}}}) == {"a": {"b": {"d": 2}}}
assert candidate({"a": 1}, {"a": {"b": 1}}) == {"a": {"b": 1}}
assert candidate({"a": [1]}, {"a": {"x": 1}}) == {"a": {"x": 1}}
base = {"x": [1], "k": {"n": 1}}
override = {"y": {"z": 1}, "k": {"m": [2]}}
merged = candidate(base, override)
merged["x"].append(2)
merged["y"]["z"] = 5
merged["k"]["m"].append(3)
assert base == {"x": [1], "k": {"n": 1}} and override == {"y": {"z": 1}, "k": {"m": [2]}}
""",
    ),
    P(
        "json_pointer",
        "Resolve an RFC 6901 JSON Pointer in `doc` (nested dicts and lists). The empty pointer is "
        "the whole document; otherwise it must start with '/', and each '/'-separated token has "
        "'~1' decoded to '/' and then '~0' to '~'. A dict is indexed by the token as a key; a "
        "list by a token of ASCII digits without leading zeros ('0' itself is fine) that is in "
        "range. Return `default` when the pointer is malformed or any step fails (including "
        "indexing into anything that is not a dict or list).",
        r"""
def json_pointer(doc, pointer: str, default=None):
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        return default
    node = doc
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if token not in node:
                return default
            node = node[token]
        elif isinstance(node, list):
            if not (token.isascii() and token.isdigit()) or (len(token) > 1 and token[0] == "0"):
                return default
            index = int(token)
            if index >= len(node):
                return default
            node = node[index]
        else:
            return default
    return node
""",
        r"""
assert candidate({"a": {"b": [10, 20]}}, "/a/b/1") == 20
assert candidate({"a": 1}, "") == {"a": 1}
assert candidate({"a/b": 1}, "/a~1b") == 1
assert candidate({"m~n": 2}, "/m~0n") == 2
assert candidate({"~1": 3}, "/~01") == 3
assert candidate({"a": [1, 2]}, "/a/01", "MISSING") == "MISSING"
assert candidate({"a": [1, 2]}, "/a/-", "MISSING") == "MISSING"
assert candidate({"a": [1, 2]}, "/a/2", "MISSING") == "MISSING"
assert candidate({"": {"": 5}}, "//") == 5
assert candidate({"a": 1}, "a", "MISSING") == "MISSING"
assert candidate({"a": "text"}, "/a/0", "MISSING") == "MISSING"
assert candidate({"0": "zero"}, "/0") == "zero"
assert candidate([[0, [7]]], "/0/1/0") == 7
""",
    ),
    P(
        "subtree_sizes",
        "`parents[i]` is the parent of node i, or -1 for a root (the input is a forest; a parent "
        "may have a larger index than its child). Return the size of every node's subtree, the "
        "node itself included. Trees may be deep (thousands of levels).",
        r"""
def subtree_sizes(parents: list) -> list:
    n = len(parents)
    children = [[] for _ in range(n)]
    roots = []
    for node, parent in enumerate(parents):
        if parent == -1:
            roots.append(node)
        else:
            children[parent].append(node)
    order = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(children[node])
    size = [1] * n
    for node in reversed(order):
        if parents[node] != -1:
            size[parents[node]] += size[node]
    return size
""",
        r"""
assert candidate([-1, 0, 0, 1]) == [4, 2, 1, 1]
assert candidate([]) == []
assert candidate([-1]) == [1]
assert candidate([-1, -1]) == [1, 1]
assert candidate([2, -1, 1]) == [1, 3, 2]
assert candidate([-1] + list(range(4999))) == list(range(5000, 0, -1))
assert candidate([3, 3, 3, -1]) == [1, 1, 1, 4]
""",
    ),
    P(
        "window_modes",
        "For each window of k consecutive values of `nums`, left to right, return its most "
        "frequent value (the smallest one on ties). k <= 0 or k > len(nums) gives [].",
        r"""
from collections import Counter


def window_modes(nums: list, k: int) -> list:
    if k <= 0 or k > len(nums):
        return []
    counts = Counter(nums[:k])

    def mode():
        return min(counts, key=lambda v: (-counts[v], v))

    out = [mode()]
    for i in range(k, len(nums)):
        counts[nums[i]] += 1
        counts[nums[i - k]] -= 1
        if counts[nums[i - k]] == 0:
            del counts[nums[i - k]]
        out.append(mode())
    return out
""",
        r"""
assert candidate([1, 2, 2, 3, 3, 3], 3) == [2, 2, 3, 3]
assert candidate([4, 1], 1) == [4, 1]
assert candidate([5, 5, 1, 1], 4) == [1]
assert candidate([], 1) == []
assert candidate([1, 2, 3], 4) == []
assert candidate([3, 1, 2], 3) == [1]
assert candidate([-1, -2, -1, -2], 2) == [-2, -2, -2]
assert candidate([7, 7, 7], 0) == []
""",
    ),
    P(
        "business_days_add",
        "Move `n` business days from the ISO date `start` (business days are Monday to Friday "
        "and not in `holidays`, a list of ISO dates): forward for n > 0, backward for n < 0. For "
        "n = 0 return `start` if it is a business day, else the next business day. Return an ISO "
        "date string.",
        r"""
from datetime import date, timedelta


def business_days_add(start: str, n: int, holidays: list) -> str:
    off = {date.fromisoformat(h) for h in holidays}
    day = date.fromisoformat(start)

    def is_business(d):
        return d.weekday() < 5 and d not in off

    if n == 0:
        while not is_business(day):
            day += timedelta(days=1)
        return day.isoformat()
    step = timedelta(days=1 if n > 0 else -1)
    remaining = abs(n)
    while remaining:
        day += step
        if is_business(day):
            remaining -= 1
    return day.isoformat()
""",
        r"""
assert candidate("2024-01-05", 1, []) == "2024-01-08"
assert candidate("2024-01-06", 0, []) == "2024-01-08"
assert candidate("2024-01-08", -1, []) == "2024-01-05"
assert candidate("2024-01-05", 1, ["2024-01-08"]) == "2024-01-09"
assert candidate("2023-12-29", 1, ["2024-01-01"]) == "2024-01-02"
assert candidate("2024-02-28", 1, []) == "2024-02-29"
assert candidate("2024-01-10", 0, []) == "2024-01-10"
assert candidate("2024-01-06", -1, []) == "2024-01-05"
assert candidate("2024-01-01", 5, []) == "2024-01-08"
assert candidate("2024-01-05", 0, ["2024-01-05"]) == "2024-01-08"
""",
    ),
    P(
        "luhn_complete",
        "Append to the digit string `partial` the single check digit that makes the whole "
        "number pass the Luhn checksum, and return the result. An empty input gives '0'.",
        r"""
def luhn_complete(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return partial + str((10 - total % 10) % 10)
""",
        r"""
assert candidate("7992739871") == "79927398713"
assert candidate("") == "0"
assert candidate("0") == "00"
assert candidate("1") == "18"
assert candidate("5") == "59"
assert candidate("12345") == "123455"
assert candidate("0000000000000") == "00000000000000"
assert candidate("9") == "91"
""",
    ),
    P(
        "instant_runoff",
        "Decide an instant-runoff election. Each ballot ranks candidate names (possibly not all). "
        "The candidates are every name on any ballot. Each round, every ballot counts for its "
        "highest-ranked remaining candidate (ballots with none left are exhausted); a candidate "
        "with more than half of the non-exhausted ballots wins; a lone remaining candidate wins. "
        "Otherwise the candidate with the fewest votes (zero included) is eliminated, ties "
        "broken by eliminating the name that sorts last (plain string order). Return the winner, "
        "or '' when there are no candidates.",
        r"""
def instant_runoff(ballots: list) -> str:
    remaining = {name for ballot in ballots for name in ballot}
    while remaining:
        if len(remaining) == 1:
            return next(iter(remaining))
        tally = {name: 0 for name in remaining}
        active = 0
        for ballot in ballots:
            for name in ballot:
                if name in remaining:
                    tally[name] += 1
                    active += 1
                    break
        for name, votes in tally.items():
            if 2 * votes > active:
                return name
        fewest = min(tally.values())
        remaining.remove(max(name for name in remaining if tally[name] == fewest))
    return ""
""",
        r"""
assert candidate([["a", "b"], ["b"], ["a"]]) == "a"
assert candidate([]) == ""
assert candidate([["x"]]) == "x"
assert candidate([["a", "c"], ["b", "c"], ["c", "a"], ["a"], ["b"]]) == "a"
assert candidate([["a"], ["b"]]) == "a"
assert candidate([["a", "z"], ["b"], ["a"], ["b", "z"]]) == "a"
assert candidate([["a"], ["a"], ["b"], ["c"], ["c", "b"]]) == "a"
assert candidate([["b"], ["b"], ["a"], ["c"]]) == "b"
assert candidate([["Bob"], ["alice"]]) == "Bob"
""",
    ),
    P(
        "render_histogram",
        "Render `counts` (label -> non-negative int) as text lines sorted by count, highest "
        "first, then by label. Each line is the label left-justified to the longest label, ' |', "
        "a bar of '#', a space and the count. The bar length is count * width // (largest count), "
        "but at least 1 for a positive count, and 0 when every count is 0. Empty input gives [].",
        r"""
def render_histogram(counts: dict, width: int) -> list:
    if not counts:
        return []
    top = max(counts.values())
    pad = max(len(label) for label in counts)
    lines = []
    for label, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        bar = 0 if top == 0 else n * width // top
        if n > 0 and bar == 0:
            bar = 1
        lines.append(f"{label.ljust(pad)} |{'#' * bar} {n}")
    return lines
""",
        r"""
assert candidate({"a": 4, "bb": 2}, 8) == ["a  |######## 4", "bb |#### 2"]
assert candidate({}, 5) == []
assert candidate({"x": 0}, 5) == ["x | 0"]
assert candidate({"b": 1, "a": 1}, 3) == ["a |### 1", "b |### 1"]
assert candidate({"big": 100, "s": 1}, 10) == ["big |########## 100", "s   |# 1"]
assert candidate({"p": 3, "q": 2}, 4) == ["p |#### 3", "q |## 2"]
assert candidate({"z": 5, "y": 0, "x": 5}, 2) == ["x |## 5", "z |## 5", "y | 0"]
""",
    ),
    P(
        "longest_repeat_nonoverlap",
        "Return the longest substring of `s` that occurs at least twice without the two "
        "occurrences overlapping. On ties return the one that occurs first in `s`; return '' if "
        "no character repeats.",
        r"""
def longest_repeat_nonoverlap(s: str) -> str:
    n = len(s)
    common = [[0] * (n + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(n - 1, i, -1):
            if s[i] == s[j]:
                common[i][j] = common[i + 1][j + 1] + 1
    best_len, best_start = 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            length = min(common[i][j], j - i)
            if length > best_len:
                best_len, best_start = length, i
    return s[best_start:best_start + best_len]
""",
        r"""
assert candidate("banana") == "an"
assert candidate("aaaa") == "aa"
assert candidate("abcabcabc") == "abc"
assert candidate("") == ""
assert candidate("abcd") == ""
assert candidate("aabaab") == "aab"
assert candidate("abab") == "ab"
assert candidate("aaa") == "a"
assert candidate("xyzxyzq") == "xyz"
""",
    ),
    P(
        "sessions",
        "Group event timestamps (any order, duplicates allowed) into sessions: after sorting, an "
        "event joins the current session when it is at most `timeout` after the session's latest "
        "event, otherwise it starts a new one. Return (first, last, number of events) for each "
        "session, in time order.",
        r"""
def sessions(timestamps: list, timeout: int) -> list:
    out = []
    for t in sorted(timestamps):
        if out and t - out[-1][1] <= timeout:
            first, _, count = out[-1]
            out[-1] = (first, t, count + 1)
        else:
            out.append((t, t, 1))
    return out
""",
        r"""
assert candidate([1, 2, 10], 3) == [(1, 2, 2), (10, 10, 1)]
assert candidate([], 5) == []
assert candidate([5, 5, 5], 0) == [(5, 5, 3)]
assert candidate([10, 1, 4, 7], 3) == [(1, 10, 4)]
assert candidate([0, 4], 3) == [(0, 0, 1), (4, 4, 1)]
assert candidate([3, 1, 2, 100, 101], 1) == [(1, 3, 3), (100, 101, 2)]
assert candidate([-5, -1], 4) == [(-5, -1, 2)]
""",
    ),
    P(
        "first_bracket_error",
        "Check the brackets ()[]{} in `s`, ignoring everything inside single-quoted strings (in "
        "which a backslash escapes the next character). Scanning left to right, return the index "
        "of the first closing bracket that does not match the innermost open one (or has none), "
        "or of an opening quote that is never closed. If the scan ends with brackets still open, "
        "return the index of the last one opened. Return -1 when everything is balanced.",
        r"""
def first_bracket_error(s: str) -> int:
    opener = {")": "(", "]": "[", "}": "{"}
    stack = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "'":
            j = i + 1
            while j < len(s) and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            if j >= len(s):
                return i
            i = j + 1
            continue
        if ch in "([{":
            stack.append(i)
        elif ch in opener:
            if not stack or s[stack[-1]] != opener[ch]:
                return i
            stack.pop()
        i += 1
    return stack[-1] if stack else -1
""",
        r"""
assert candidate("(a[b]{c})") == -1
assert candidate("") == -1
assert candidate("(]") == 1
assert candidate(")") == 0
assert candidate("((x)") == 0
assert candidate("[(])") == 2
assert candidate("f('(')") == -1
assert candidate("x = '[' + ']' )") == 14
assert candidate("('it\\'s')") == -1
assert candidate("a'bc") == 1
assert candidate("([{") == 2
assert candidate("'\\'") == 0
""",
    ),
    P(
        "chunk_balanced",
        "Split the list `items` into exactly n (n >= 1) consecutive chunks whose sizes differ by "
        "at most one, the larger chunks first. Chunks may be empty when there are fewer items "
        "than chunks.",
        r"""
def chunk_balanced(items: list, n: int) -> list:
    size, extra = divmod(len(items), n)
    chunks = []
    start = 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks
""",
        r"""
assert candidate([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
assert candidate([1, 2], 4) == [[1], [2], [], []]
assert candidate([], 3) == [[], [], []]
assert candidate([1, 2, 3], 1) == [[1, 2, 3]]
assert candidate(list(range(10)), 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
assert candidate([1, 2, 3, 4, 5, 6], 3) == [[1, 2], [3, 4], [5, 6]]
""",
    ),
    P(
        "transpose_ragged",
        "Transpose a list of rows of different lengths: column i of the result holds element i "
        "of every row, with `fill` where a row is too short. The result has as many rows as the "
        "longest input row.",
        r"""
def transpose_ragged(rows: list, fill=None) -> list:
    width = max((len(row) for row in rows), default=0)
    return [[row[i] if i < len(row) else fill for row in rows] for i in range(width)]
""",
        r"""
assert candidate([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]
assert candidate([[1], [2, 3]], 0) == [[1, 2], [0, 3]]
assert candidate([]) == []
assert candidate([[], []]) == []
assert candidate([[1, 2], [], [3]], "-") == [[1, "-", 3], [2, "-", "-"]]
assert candidate([[7]]) == [[7]]
assert candidate([[1, 2]], 9) == [[1], [2]]
""",
    ),
]


def header(code: str, name: str) -> tuple:
    """(imports, signature lines) of the reference: what a HumanEval-style header shows."""
    tree = ast.parse(code)
    lines = code.splitlines()
    imports = [ast.get_source_segment(code, node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    if len(functions) != 1:
        raise SystemExit(f"{name}: the reference must define {name} exactly once at top level")
    fn = functions[0]
    signature = "\n".join(lines[fn.lineno - 1 : fn.body[0].lineno - 1])
    return "\n".join(imports), signature


def check_program(code: str, test: str, name: str) -> None:
    namespace: dict = {}
    exec(compile(code + "\n" + test, f"<{name}>", "exec"), namespace)
    namespace["check"](namespace[name])


def row(index: int, p: P) -> dict:
    code = textwrap.dedent(p.code).strip() + "\n"
    body = textwrap.dedent(p.tests).strip()
    test = "def check(candidate):\n" + textwrap.indent(body, "    ") + "\n"
    asserts = sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(test)))
    if asserts < 6:
        raise SystemExit(f"{p.name}: {asserts} asserts, at least 6 required")

    check_program(code, test, p.name)
    try:
        check_program(f"def {p.name}(*args, **kwargs):\n    return None\n", test, p.name)
    except AssertionError:
        pass
    except Exception:
        pass
    else:
        raise SystemExit(f"{p.name}: golden tests pass a function that returns None")

    imports, signature = header(code, p.name)
    docstring = textwrap.indent(textwrap.fill(p.description, 88), "    ")
    problem = (imports + "\n\n\n" if imports else "") + signature + '\n    """\n' + docstring + '\n    """\n'
    declaration = (imports + "\n\n\n" if imports else "") + signature
    return {
        "prompt": [
            {"content": SYSTEM, "role": "system"},
            {"content": INSTRUCTION + problem, "role": "user"},
        ],
        "description": p.description,
        "GT_code": code,
        "problem": problem,
        "test": test,
        "data_source": "builtin",
        "extra_info": {
            "function_declaration": declaration,
            "function_name": p.name,
            "imports": imports,
            "question_id": f"builtin/{index:03d}",
        },
    }


def main() -> None:
    names = [p.name for p in PROBLEMS]
    if len(set(names)) != len(names):
        raise SystemExit("function names must be unique")
    rows = [row(i + 1, p) for i, p in enumerate(PROBLEMS)]
    with OUT.open("w", encoding="utf-8") as out:
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} problems to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
