"""
The conformance server's event log: one event per HTTP request the client under test makes
(route, raw body, status), completed with what SGLang's own code made of it on the way to the
scheduler (sampling params, adapter) and what the stand-in scheduler did with it (weight files,
tensor names, adapter checks).

Requests reach the scheduler over SGLang's ZMQ socket as serialized copies, so the scheduler cannot
see the HTTP request a message belongs to. The tokenizer manager notes every message it dispatches
together with the event of the request it is serving (a context variable set by the middleware);
the scheduler claims that note when the message arrives. The socket preserves order, so claiming the
first note of the same type and request ids is exact.
"""
import contextvars
import copy
import json
import threading
from typing import Any, Optional

_current_event: contextvars.ContextVar[Optional[dict]] = contextvars.ContextVar("conformance_event", default=None)

# Reads that change nothing are not events; /flush_cache changes the cache whichever method it comes by.
_RECORDED_GETS = {"/flush_cache"}


def _rids(obj: Any) -> tuple:
    batch = getattr(obj, "batch", None)
    if batch is not None:
        return tuple(getattr(item, "rid", None) for item in batch)
    return (getattr(obj, "rid", None),)


class ConformanceLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._pending: list[tuple[str, tuple, Optional[dict]]] = []

    def open(self, route: str, body: Any, **fields) -> dict:
        event = {"route": route, "body": body, **fields}
        with self._lock:
            self._events.append(event)
        return event

    def events(self) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._events)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()

    def note_dispatch(self, obj: Any) -> Optional[dict]:
        """Called on the tokenizer side for every message sent to the scheduler; returns the event it belongs to."""
        event = _current_event.get()
        with self._lock:
            self._pending.append((type(obj).__name__, _rids(obj), event))
        return event

    def update(self, event: Optional[dict], fields: dict) -> None:
        """Adds fields to an event; events are read concurrently by GET /conformance/log."""
        if event is None:
            return
        with self._lock:
            event.update(fields)

    def add_side_effect(self, event: Optional[dict], effect: dict) -> None:
        if event is None:
            return
        with self._lock:
            event.setdefault("side_effects", []).append(effect)

    def add_to_request(self, event: Optional[dict], rid: str, fields: dict) -> None:
        """Adds what is known about one generate request (one rid; a request with n > 1 has
        several) to its event's `requests`; the first one's fields are also the event's own."""
        if event is None:
            return
        with self._lock:
            requests = event.setdefault("requests", [])
            entry = next((r for r in requests if r.get("rid") == rid), None)
            if entry is None:
                entry = {"rid": rid}
                requests.append(entry)
            entry.update(fields)
            if entry is requests[0]:
                event.update(fields)

    def claim(self, obj: Any) -> Optional[dict]:
        """Called on the scheduler side for every message received; returns the event it belongs to."""
        key = (type(obj).__name__, _rids(obj))
        with self._lock:
            for i, (name, rids, event) in enumerate(self._pending):
                if (name, rids) == key:
                    del self._pending[i]
                    return event
        return None


class RecordingMiddleware:
    """ASGI middleware: opens an event for each state-changing request and makes it current while
    SGLang's handler runs. The body is read here and replayed to the app unchanged."""

    def __init__(self, app, log: ConformanceLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or path.startswith("/conformance/")
            or (scope["method"] in ("GET", "HEAD", "OPTIONS") and path not in _RECORDED_GETS)
        ):
            await self.app(scope, receive, send)
            return

        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        query = scope.get("query_string", b"").decode("latin-1")
        event = self.log.open(path, body, method=scope["method"], **({"query": query} if query else {}))

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        async def capture_status(message):
            if message["type"] == "http.response.start":
                self.log.update(event, {"status": message["status"]})
            await send(message)

        token = _current_event.set(event)
        try:
            await self.app(scope, replay, capture_status)
        finally:
            _current_event.reset(token)
