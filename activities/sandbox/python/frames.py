"""Length-prefixed JSON frames: 4-byte big-endian length, then UTF-8 JSON."""
import json
import os
import struct

MAX_FRAME = 16 << 20
_HEADER = struct.Struct(">I")


def encode_frame(obj):
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(body)) + body


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_frame(fd, obj):
    write_all(fd, encode_frame(obj))


class FrameError(Exception):
    pass


class FrameReader:
    """Accumulates bytes from one fd; yields complete frames. Frames from the sandbox are untrusted."""

    def __init__(self, limit=MAX_FRAME):
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data):
        self._buf += data

    def frames(self):
        out = []
        while len(self._buf) >= 4:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > self._limit:
                raise FrameError(f"frame of {size} bytes exceeds the limit")
            if len(self._buf) < 4 + size:
                break
            body = bytes(self._buf[4:4 + size])
            del self._buf[:4 + size]
            try:
                obj = json.loads(body.decode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError) as err:
                raise FrameError(f"malformed frame: {err}") from None
            if type(obj) is not dict:
                raise FrameError("frame is not an object")
            out.append(obj)
        return out


def read_exact(fd, n):
    """Blocking read of exactly n bytes; None at end of file."""
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd):
    """Blocking read of one frame (for trusted peers); None at end of file."""
    header = read_exact(fd, 4)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds the limit")
    body = read_exact(fd, size)
    if body is None:
        return None
    return json.loads(body.decode("utf-8", "surrogatepass"))
