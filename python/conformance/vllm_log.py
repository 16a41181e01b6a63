"""What the conformance server saw: one JSON event per engine call, readable over HTTP.

Events are plain dicts so that `GET /conformance/log` returns them as they were recorded. The
raw body of the HTTP request being served travels in a context variable, set by an ASGI
middleware that runs in the request's own task, so the engine can attach it to its event.
"""

import contextvars
import dataclasses
import json
import threading
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

_request = contextvars.ContextVar[tuple[str, Any] | None]("conformance_request", default=None)


class EventLog:
    """Written from the engine's thread and read from the server's: every access holds the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._by_request: dict[str, dict[str, Any]] = {}

    def record(self, route: str, **fields: Any) -> dict[str, Any]:
        """Appends an event and returns it, for `update` to complete (an error, a result)."""
        event = {"route": route, **fields}
        with self._lock:
            self._events.append(event)
        return event

    def record_request(self, request_id: str, **fields: Any) -> dict[str, Any]:
        """An event for the HTTP request being served, with its path as route and its raw body."""
        path, body = _request.get() or ("(no http request)", None)
        event = self.record(path, body=body, request_id=request_id, **fields)
        with self._lock:
            self._by_request[request_id] = event
        return event

    def update(self, event: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            event.update(fields)

    def annotate(self, request_id: str | None, **fields: Any) -> None:
        """Adds fields to the event `record_request` made for this request id, if any."""
        with self._lock:
            event = self._by_request.get(request_id) if request_id is not None else None
            if event is not None:
                event.update(fields)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._events))

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._by_request.clear()


def plain(value: Any) -> Any:
    """A msgspec struct, dataclass, enum or set as JSON values, recursively."""
    if hasattr(value, "__struct_fields__"):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "value") and isinstance(value.value, (str, int)):
        return value.value
    return repr(value)


class CaptureRequestBody:
    """ASGI middleware: buffers a JSON POST body, exposes it to the engine and replays it to the app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith("/conformance"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        token = _request.set((scope["path"], body))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        try:
            await self.app(scope, replay, send)
        finally:
            _request.reset(token)


def attach(app: FastAPI, log: EventLog) -> None:
    # vLLM's app has built its middleware stack already (add_middleware is refused): wrap it.
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    app.middleware_stack = CaptureRequestBody(app.middleware_stack)

    @app.get("/conformance/log")
    async def read_log() -> JSONResponse:
        return JSONResponse(log.snapshot())

    @app.post("/conformance/reset")
    async def reset_log() -> JSONResponse:
        log.clear()
        return JSONResponse({"events": 0})
