"""The restricted value format that carries return values out of sandboxed processes.

Only exact built-in types are representable (a subclass of int with a forged __eq__ is not an
int here). `encode` runs inside the sandbox, so its output is untrusted data; the supervisor
re-decodes it with `decode` (building genuine built-in objects) and re-encodes it, which yields a
canonical form (sets deduplicated, ints normalised) and a repr computed by trusted code.

Tags: N None, B bool, I int (decimal text), F float (repr), C complex, S str, Y bytes (hex),
L list, T tuple, E set, Z frozenset, D dict (list of [key, value] pairs).
"""

MAX_DEPTH = 64
MAX_NODES = 200_000


class Unrepresentable(Exception):
    pass


def encode(value):
    budget = [MAX_NODES]

    def enc(v, depth):
        budget[0] -= 1
        if budget[0] < 0:
            raise Unrepresentable("value too large")
        if depth > MAX_DEPTH:
            raise Unrepresentable("value nested too deeply")
        t = type(v)
        if v is None:
            return ["N"]
        if t is bool:
            return ["B", v]
        if t is int:
            try:
                return ["I", int.__repr__(v)]
            except ValueError:
                raise Unrepresentable("int too large") from None
        if t is float:
            return ["F", float.__repr__(v)]
        if t is complex:
            return ["C", float.__repr__(v.real), float.__repr__(v.imag)]
        if t is str:
            return ["S", str.__str__(v)]
        if t is bytes:
            return ["Y", bytes.hex(v)]
        if t is list:
            return ["L", [enc(x, depth + 1) for x in list.__iter__(v)]]
        if t is tuple:
            return ["T", [enc(x, depth + 1) for x in tuple.__iter__(v)]]
        if t is set:
            return ["E", [enc(x, depth + 1) for x in set.__iter__(v)]]
        if t is frozenset:
            return ["Z", [enc(x, depth + 1) for x in frozenset.__iter__(v)]]
        if t is dict:
            return ["D", [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in dict.items(v)]]
        raise Unrepresentable(f"unsupported type {type.__getattribute__(t, '__name__')}")

    try:
        return enc(value, 0)
    except RecursionError:
        raise Unrepresentable("value nested too deeply") from None


def _float(text):
    if type(text) is not str or len(text) > 40:
        raise ValueError("bad float")
    return float(text)


def decode(data):
    """Builds genuine built-in objects from untrusted encoded data; raises ValueError if malformed."""
    budget = [MAX_NODES]

    def dec(d, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise ValueError("value too large")
        if type(d) is not list or not d or type(d[0]) is not str:
            raise ValueError("malformed value")
        tag, n = d[0], len(d)
        if tag == "N" and n == 1:
            return None
        if tag == "B" and n == 2 and type(d[1]) is bool:
            return d[1]
        if tag == "I" and n == 2 and type(d[1]) is str and len(d[1]) <= 4300:
            return int(d[1], 10)
        if tag == "F" and n == 2:
            return _float(d[1])
        if tag == "C" and n == 3:
            return complex(_float(d[1]), _float(d[2]))
        if tag == "S" and n == 2 and type(d[1]) is str:
            return d[1]
        if tag == "Y" and n == 2 and type(d[1]) is str:
            return bytes.fromhex(d[1])
        if tag in ("L", "T", "E", "Z") and n == 2 and type(d[1]) is list:
            items = [dec(x, depth + 1) for x in d[1]]
            return {"L": list, "T": tuple, "E": set, "Z": frozenset}[tag](items)
        if tag == "D" and n == 2 and type(d[1]) is list:
            out = {}
            for pair in d[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("malformed dict entry")
                out[dec(pair[0], depth + 1)] = dec(pair[1], depth + 1)
            return out
        raise ValueError(f"malformed value with tag {tag!r}")

    try:
        return dec(data, 0)
    except (TypeError, RecursionError) as err:
        raise ValueError(str(err)) from None


def literal(v):
    """Python source that evaluates to v (repr, except that inf and nan stay evaluable)."""
    t = type(v)
    if t is float:
        if v != v:
            return "float('nan')"
        if v in (float("inf"), float("-inf")):
            return "float('inf')" if v > 0 else "float('-inf')"
        return repr(v)
    if t is complex:
        if any(x != x or x in (float("inf"), float("-inf")) for x in (v.real, v.imag)):
            return f"complex({literal(v.real)}, {literal(v.imag)})"
        return repr(v)
    if t is list:
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if t is tuple:
        inner = ", ".join(literal(x) for x in v)
        return "(" + inner + ("," if len(v) == 1 else "") + ")"
    if t is set:
        return "{" + ", ".join(literal(x) for x in v) + "}" if v else "set()"
    if t is frozenset:
        return "frozenset({" + ", ".join(literal(x) for x in v) + "})" if v else "frozenset()"
    if t is dict:
        return "{" + ", ".join(f"{literal(k)}: {literal(x)}" for k, x in v.items()) + "}"
    return repr(v)


def canonical(data):
    """(re-encoded value, literal) from untrusted encoded data, or raises ValueError."""
    value = decode(data)
    try:
        return encode(value), literal(value)
    except (Unrepresentable, RecursionError) as err:
        raise ValueError(str(err)) from None
