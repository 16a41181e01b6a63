"""HTTP: the routes (listed in model_server.py's docstring) and the weight changes they ask for."""
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .adapters import Adapter, read_adapter
from .chat import parse_chat_request, response_body
from .config import ApiError, ServerConfig
from .engine import SERVER_INSTANCE, Engine, load_engine
from .scheduler import Scheduler

log = logging.getLogger("model_server")


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the process alive on shutdown

    def __init__(self, cfg: ServerConfig, scheduler: Scheduler):
        self.cfg, self.scheduler = cfg, scheduler
        self.load_lock = threading.Lock()  # one weight change (checkpoint or adapter) at a time
        self.adapter_loads = 0  # numbers adapter loads, so that every load has its own fingerprint
        super().__init__((cfg.host, cfg.port), Handler)

    def load_checkpoint(self, path: str) -> Engine:
        """Loads a new base and re-applies the loaded adapters to it (as vLLM keeps its LoRA adapters
        over a weight reload), each with a new fingerprint naming the new base version. If one of them
        does not fit the new base, nothing changes: unload it first."""
        with self.load_lock:
            current = self.scheduler.engine
            try:
                engine = load_engine(path, current.version + 1, self.cfg.dtype, self.cfg.max_loras,
                                     fallback_tokenizer=current.tokenizer)
                for a in sorted(current.adapters.by_name.values(), key=lambda a: a.slot):
                    try:
                        engine.adapters.install(a.name, a.files, a.number, adapter_fingerprint(engine, a.name, a.number))
                    except ValueError as e:
                        raise ValueError(f"loaded adapter {a.name} does not fit it ({e}); unload it first") from e
            except Exception as e:
                log.warning("reload of %s failed, still serving %s: %s", path, current.path, e)
                raise ApiError(400, f"could not load checkpoint {path}: {type(e).__name__}: {e}",
                               code="checkpoint_load_failed", param="path") from e
            self.scheduler.engine = engine  # one reference assignment: the next batch sees it
            return engine

    def load_adapter(self, name: str, path: str) -> Adapter:
        with self.load_lock:
            engine = self.scheduler.engine
            self.check_adapter_name(engine, name)
            try:
                files = read_adapter(path)  # outside engine.lock: batches go on while the files are read
                self.adapter_loads += 1
                with engine.lock:
                    adapter = engine.adapters.install(name, files, self.adapter_loads,
                                                      adapter_fingerprint(engine, name, self.adapter_loads))
            except ValueError as e:
                log.warning("adapter %s from %s not loaded: %s", name, path, e)
                raise ApiError(400, f"could not load LoRA adapter {name} from {path}: {e}",
                               code="lora_load_failed", param="lora_path") from e
            log.info("loaded adapter %s from %s (slot %d, %s)", name, path, adapter.slot, adapter.fingerprint)
            return adapter

    def check_adapter_name(self, engine: Engine, name: str) -> None:
        if name == self.cfg.model_name:
            raise ApiError(400, f"`{name}` is the base model's name", param="lora_name")
        if engine.adapters.get(name) is not None:  # vLLM answers the same: clients check /v1/models first
            raise ApiError(400, f"The lora adapter '{name}' has already been loaded.", param="lora_name")
        if len(engine.adapters) >= self.cfg.max_loras:
            raise ApiError(400, f"{self.cfg.max_loras} LoRA adapters are loaded, the limit (--max-loras); "
                                "unload one first", param="lora_name")

    def unload_adapter(self, name: str) -> Adapter:
        with self.load_lock:
            engine = self.scheduler.engine
            if engine.adapters.get(name) is None:
                raise ApiError(404, f"The lora adapter '{name}' cannot be found.", code="model_not_found",
                               param="lora_name")
            with engine.lock:  # waits for the batch in flight; queued requests for it then fail with 404
                adapter = engine.adapters.remove(name)
            log.info("unloaded adapter %s (%s)", name, adapter.fingerprint)
            return adapter


def adapter_fingerprint(engine: Engine, name: str, number: int) -> str:
    """Unique per server process, base load and adapter load: two loads of one name differ in
    `number`, one load re-applied on a new base in the base version."""
    return f"ckpt-{SERVER_INSTANCE}-v{engine.version}-{name}-a{number}"


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"  # keep-alive for clients that pool connections

    def log_message(self, format, *args):
        log.debug("%s " + format, self.address_string(), *args)

    def send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_errors(self, route) -> None:
        try:
            self.send_json(200, route())
        except ApiError as e:
            self.send_json(e.status, e.body())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; nothing to answer
        except Exception as e:
            log.exception("unexpected error on %s %s", self.command, self.path)
            self.send_json(500, ApiError(500, f"{type(e).__name__}: {e}").body())

    def read_json(self):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True  # the body's end is unknown, so is the next request's start
            raise ApiError(411 if length is None else 400, "a Content-Length header is required")
        if int(length) > self.server.cfg.max_body_bytes:
            self.close_connection = True  # the unread body would be parsed as the next request
            raise ApiError(413, f"request body over {self.server.cfg.max_body_bytes} bytes")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the request body is not valid JSON: {e}") from None

    def read_fields(self, *names: str) -> list[str]:
        """The named non-empty string fields of a JSON object body."""
        body = self.read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        for name in names:
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiError(400, f"{name} must be a non-empty string", param=name)
        return [body[name] for name in names]

    def do_GET(self):
        routes = {"/health": self.health, "/v1/models": self.models}
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/models/"):
            return self.handle_errors(lambda: self.model(path.removeprefix("/v1/models/")))
        self.handle_errors(routes.get(path, self.not_found))

    def do_POST(self):
        routes = {
            "/v1/chat/completions": self.chat_completions,
            "/v1/load_checkpoint": self.load_checkpoint,
            "/v1/load_lora_adapter": self.load_lora_adapter,
            "/v1/unload_lora_adapter": self.unload_lora_adapter,
        }
        self.handle_errors(routes.get(self.path.split("?", 1)[0].rstrip("/"), self.not_found))

    def not_found(self):
        if self.command == "POST" and self.headers.get("Content-Length", "").isdigit():
            self.rfile.read(int(self.headers["Content-Length"]))  # keep the connection in sync
        raise ApiError(404, f"no route {self.command} {self.path}", code="not_found")

    def health(self) -> dict:
        s = self.server.scheduler
        return {"status": "ok", "model": self.server.cfg.model_name, "checkpoint_version": s.engine.version,
                "dtype": str(s.engine.dtype).removeprefix("torch."), "lora_adapters": list(s.engine.adapters.by_name),
                "queued_sequences": s.queue.qsize(), **s.stats}

    def base_card(self, e: Engine) -> dict:
        return {"id": self.server.cfg.model_name, "object": "model", "created": int(e.loaded_at),
                "owned_by": "code-a1", "root": e.path, "parent": None, "max_model_len": e.max_model_len,
                "checkpoint": {"path": e.path, "version": e.version, "fingerprint": e.fingerprint}}

    def adapter_card(self, e: Engine, a: Adapter) -> dict:
        path = a.files.path
        return {"id": a.name, "object": "model", "created": int(a.loaded_at), "owned_by": "code-a1",
                "root": path, "parent": self.server.cfg.model_name, "max_model_len": e.max_model_len,
                "checkpoint": {"path": path, "version": a.number, "fingerprint": a.fingerprint}}

    def models(self) -> dict:
        e = self.server.scheduler.engine
        adapters = sorted(e.adapters.by_name.values(), key=lambda a: a.number)
        return {"object": "list", "data": [self.base_card(e), *(self.adapter_card(e, a) for a in adapters)]}

    def model(self, name: str) -> dict:
        e = self.server.scheduler.engine
        if name == self.server.cfg.model_name:
            return self.base_card(e)
        adapter = e.adapters.get(name)
        if adapter is None:
            raise ApiError(404, f"The model `{name}` does not exist", code="model_not_found", param="model")
        return self.adapter_card(e, adapter)

    def chat_completions(self) -> dict:
        c = parse_chat_request(self.read_json(), self.server.cfg, self.server.scheduler.engine)
        self.server.scheduler.submit(c)
        c.done.wait()
        if c.error is not None:
            raise c.error
        return response_body(c)

    def load_checkpoint(self) -> dict:
        body = self.read_json()
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise ApiError(400, "path must be a checkpoint directory", param="path")
        if not Path(path).is_dir():
            raise ApiError(400, f"{path} is not a directory", code="checkpoint_not_found", param="path")
        e = self.server.load_checkpoint(str(Path(path).resolve()))
        return {"model": self.server.cfg.model_name, "path": e.path, "version": e.version}

    def load_lora_adapter(self) -> dict:
        name, path = self.read_fields("lora_name", "lora_path")
        if not Path(path).is_dir():
            raise ApiError(400, f"{path} is not a directory", code="lora_not_found", param="lora_path")
        adapter = self.server.load_adapter(name, str(Path(path).resolve()))
        return self.adapter_card(self.server.scheduler.engine, adapter)

    def unload_lora_adapter(self) -> dict:
        [name] = self.read_fields("lora_name")
        adapter = self.server.unload_adapter(name)
        return {"id": adapter.name, "object": "model", "deleted": True}
