"""HTTP: the routes (listed in model_server.py's docstring) and the weight changes they ask for."""
import dataclasses
import json
import logging
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .adapters import Adapter, read_adapter
from .chat import parse_chat_request, response_body
from .config import ApiError, ServerConfig
from .engine import SERVER_INSTANCE, Engine, load_engine
from .scheduler import PAUSE_MODES, Scheduler

log = logging.getLogger("model_server")


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the process alive on shutdown
    # Listen backlog. socketserver's default, 5, drops the connections of a burst beyond it while the
    # accepting thread waits for the GIL; the client retries them a second later, after the batch has
    # started: 3 of a stage's 12 test requests then waited the whole batch (make run's server log).
    request_queue_size = 128

    def __init__(self, cfg: ServerConfig, scheduler: Scheduler):
        self.cfg, self.scheduler = cfg, scheduler
        self.load_lock = threading.Lock()  # one weight change (checkpoint or adapter) at a time
        self.adapter_loads = 0  # numbers adapter loads, so that every load has its own fingerprint
        self.weight_version = "default"  # SGLang's label of the weights served (its initial value)
        self.prefix_cache_resets = 0  # /reset_prefix_cache calls, so that tests can see a client made them
        super().__init__((cfg.host, cfg.port), Handler)

    @property
    def ignores_reloads(self) -> bool:
        return "ignore-reloads" in self.cfg.faults

    def load_checkpoint(self, path: str) -> Engine:
        """Loads a new base and re-applies the loaded adapters to it (as vLLM keeps its LoRA adapters
        over a weight reload), each with a new fingerprint naming the new base version. If one of them
        does not fit the new base, nothing changes: unload it first."""
        with self.load_lock:
            current = self.scheduler.engine
            if self.ignores_reloads:  # the old model and adapters under the new path and version
                engine = dataclasses.replace(current, path=path, version=current.version + 1, loaded_at=time.time())
                self.scheduler.engine = engine
                log.warning("fault ignore-reloads: reporting %s, still serving %s", path, current.path)
                return engine
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
                if self.ignores_reloads:  # listed with its path, but without weights: the base answers for it
                    files = dataclasses.replace(files, rank=0, modules={})
                    log.warning("fault ignore-reloads: adapter %s serves the base weights", name)
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

    @contextmanager
    def requests_aborted(self, abort: bool):
        """SGLang's abort_all_requests: with abort, the requests submitted so far end now (finish_reason
        "abort") and new ones wait until the block is done; a pause a client made stays."""
        resume = abort and not self.scheduler.paused
        if abort:
            self.scheduler.pause("abort")
        try:
            yield
        finally:
            if resume:
                self.scheduler.resume()


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
        """Answers what route() returns: a body (200) or (status, body)."""
        try:
            answer = route()
            self.send_json(*(answer if isinstance(answer, tuple) else (200, answer)))
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

    def read_object(self, optional: bool = False) -> dict:
        """The JSON object body; with optional, {} for a request without a body (control routes that
        clients call bare, like vLLM's /pause)."""
        if optional and self.headers.get("Content-Length", "0") == "0":
            return {}
        body = self.read_json()
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def read_fields(self, *names: str) -> list[str]:
        """The named non-empty string fields of a JSON object body."""
        body = self.read_object()
        return [text_field(body, name) for name in names]

    def query(self, name: str) -> str | None:
        values = parse_qs(urlsplit(self.path).query).get(name)
        return values[-1] if values else None

    def do_GET(self):
        routes = {
            "/health": self.health,
            "/v1/models": self.models,
            "/is_paused": self.is_paused,
            "/model_info": self.model_info,
            "/get_model_info": self.model_info,
        }
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
            # vLLM's development routes (VLLM_SERVER_DEV_MODE=1)
            "/collective_rpc": self.collective_rpc,
            "/reset_prefix_cache": self.reset_prefix_cache,
            "/pause": self.pause,
            "/resume": self.resume,
            # SGLang's routes
            "/update_weights_from_disk": self.update_weights_from_disk,
            "/update_weight_version": self.update_weight_version,
            "/load_lora_adapter": self.sglang_load_lora_adapter,
            "/unload_lora_adapter": self.sglang_unload_lora_adapter,
            "/pause_generation": self.pause_generation,
            "/continue_generation": self.continue_generation,
        }
        self.handle_errors(routes.get(self.path.split("?", 1)[0].rstrip("/"), self.not_found))

    def not_found(self):
        if self.command == "POST" and self.headers.get("Content-Length", "").isdigit():
            self.rfile.read(int(self.headers["Content-Length"]))  # keep the connection in sync
        raise ApiError(404, f"no route {self.command} {self.path}", code="not_found")

    def health(self) -> dict:
        s = self.server.scheduler
        with s.state:  # consistent with the scheduler's admission step (never held while it decodes)
            paused, held = s.paused, s.held
        return {"status": "ok", "model": self.server.cfg.model_name, "checkpoint_version": s.engine.version,
                "dtype": str(s.engine.dtype).removeprefix("torch."), "lora_adapters": list(s.engine.adapters.by_name),
                "queued_sequences": s.queue.qsize(), "paused": paused, "held_sequences": held,
                "prefix_cache_resets": self.server.prefix_cache_resets, "faults": list(self.server.cfg.faults),
                **s.stats}

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

    def checkpoint_dir(self, path: str, param: str) -> str:
        if not Path(path).is_dir():
            raise ApiError(400, f"{path} is not a directory", code="checkpoint_not_found", param=param)
        return str(Path(path).resolve())

    def load_checkpoint(self) -> dict:
        body = self.read_object()
        path = body.get("path")
        if not isinstance(path, str) or not path:
            raise ApiError(400, "path must be a checkpoint directory", param="path")
        e = self.server.load_checkpoint(self.checkpoint_dir(path, "path"))
        return {"model": self.server.cfg.model_name, "path": e.path, "version": e.version}

    def load_lora_adapter(self) -> dict:
        name, path = self.read_fields("lora_name", "lora_path")
        return self.adapter_card(self.server.scheduler.engine, self.load_adapter(name, path))

    def load_adapter(self, name: str, path: str) -> Adapter:
        if not Path(path).is_dir():
            raise ApiError(400, f"{path} is not a directory", code="lora_not_found", param="lora_path")
        return self.server.load_adapter(name, str(Path(path).resolve()))

    def unload_lora_adapter(self) -> dict:
        [name] = self.read_fields("lora_name")
        adapter = self.server.unload_adapter(name)
        return {"id": adapter.name, "object": "model", "deleted": True}

    # ---- vLLM's development routes

    def collective_rpc(self) -> dict:
        """vLLM runs `method(*args, **kwargs)` on every worker and answers each one's result; only
        reload_weights is served here, reloading like /v1/load_checkpoint. vLLM answers a worker's
        exception (a reload that fails, a keyword it does not take) with 500 and its message."""
        body = self.read_object()
        method = body.get("method")
        if method is None:
            raise ApiError(400, "Missing 'method' in request body", param="method")
        if method != "reload_weights":
            raise ApiError(400, f"method {method!r} is not served by the embedded server; it serves reload_weights",
                           param="method")
        args, kwargs = body.get("args") or [], body.get("kwargs") or {}
        if args or not isinstance(kwargs, dict):
            raise ApiError(400, "reload_weights takes keyword arguments only: kwargs {\"weights_path\": DIR}",
                           param="kwargs")
        accepted = set() if "reload-without-path" in self.server.cfg.faults else {"weights_path"}
        for name in kwargs:
            if name not in accepted:
                raise ApiError(500, f"TypeError: reload_weights() got an unexpected keyword argument '{name}'")
        # Without a path vLLM re-reads the directory it serves (a client may have overwritten it).
        path = kwargs.get("weights_path", self.server.scheduler.engine.path)
        if not isinstance(path, str) or not path:
            raise ApiError(400, "weights_path must be a directory", param="kwargs")
        try:
            self.server.load_checkpoint(str(Path(path).resolve()))
        except ApiError as e:
            raise ApiError(500, e.message, code=e.code) from e
        return {"results": [None]}  # one worker; reload_weights returns None

    def reset_prefix_cache(self) -> dict:
        # The server has no prefix cache across requests: every batch prefills its prompts on the weights
        # it runs with (the n choices of a request share one prefill, within the batch). Counted all the
        # same, so that tests see the client followed a reload with it, as vLLM needs.
        self.read_object(optional=True)
        self.server.prefix_cache_resets += 1
        return {"success": True}

    def pause(self) -> dict:
        self.read_object(optional=True)
        mode = self.query("mode")
        if mode is None:  # the deprecated flag of releases before `mode`; vLLM's default is abort
            mode = "wait" if self.query("wait_for_inflight_requests") in ("true", "True", "1") else "abort"
        if mode not in PAUSE_MODES:
            raise ApiError(400, f"mode must be one of {', '.join(PAUSE_MODES)}, not {mode!r}", param="mode")
        self.server.scheduler.pause(mode)
        return {"status": "paused"}

    def resume(self) -> dict:
        self.read_object(optional=True)
        self.server.scheduler.resume()
        return {"status": "resumed"}

    def is_paused(self) -> dict:
        return {"is_paused": self.server.scheduler.paused}

    # ---- SGLang's routes: failures are 400 {"success": false, "message"}

    def update_weights_from_disk(self) -> tuple[int, dict]:
        def update() -> dict:
            body = self.read_object()
            path = text_field(body, "model_path")
            version = optional_field(body, "weight_version", str)
            optional_field(body, "flush_cache", bool)  # no prefix cache to flush (see reset_prefix_cache)
            abort = optional_field(body, "abort_all_requests", bool) or False
            load_format = optional_field(body, "load_format", str)
            if load_format not in (None, "auto", "safetensors"):
                raise ApiError(400, f"load_format {load_format!r}: the embedded server loads Hugging Face "
                                    "checkpoint directories (auto, safetensors)", param="load_format")
            with self.server.requests_aborted(abort):
                self.server.load_checkpoint(self.checkpoint_dir(path, "model_path"))
            message = "Succeeded to update model weights."
            if version is not None:
                self.server.weight_version = version
                message += f" Weight version updated to {version}."
            return {"success": True, "message": message, "num_paused_requests": 0}
        return self.sglang_answer(update, num_paused_requests=0)

    def model_info(self) -> dict:
        e = self.server.scheduler.engine
        return {"model_path": e.path, "tokenizer_path": getattr(e.tokenizer, "name_or_path", e.path),
                "is_generation": True, "preferred_sampling_params": None,
                "weight_version": self.server.weight_version, "served_model_name": self.server.cfg.model_name}

    def update_weight_version(self) -> tuple[int, dict]:
        def update() -> dict:
            body = self.read_object()
            version = text_field(body, "new_version")
            with self.server.requests_aborted(optional_field(body, "abort_all_requests", bool) or False):
                self.server.weight_version = version
            return {"success": True, "message": f"Weight version updated to {version}", "new_version": version}
        return self.sglang_answer(update)

    def sglang_answer(self, action, lora: bool = False, **extra) -> tuple[int, dict]:
        """SGLang's answer shape: 200 and the action's body, or 400 {"success": false, "message", **extra}.
        Its LoRA routes name the error `error_message` and list the adapters loaded either way."""
        try:
            return 200, action()
        except ApiError as e:
            body = {"success": False, "message": e.message, **extra}
            if lora:
                body.update(error_message=e.message, loaded_adapters=self.loaded_adapters())
            return 400, body

    def loaded_adapters(self) -> dict:
        return {a.name: a.files.path for a in self.server.scheduler.engine.adapters.by_name.values()}

    def sglang_load_lora_adapter(self) -> tuple[int, dict]:
        def load() -> dict:
            name, path = self.read_fields("lora_name", "lora_path")
            adapter = self.load_adapter(name, path)
            return {"success": True, "message": f"Loaded LoRA adapter {name} from {adapter.files.path}",
                    "error_message": None, "loaded_adapters": self.loaded_adapters()}
        return self.sglang_answer(load, lora=True)

    def sglang_unload_lora_adapter(self) -> tuple[int, dict]:
        def unload() -> dict:
            [name] = self.read_fields("lora_name")
            self.server.unload_adapter(name)
            return {"success": True, "message": f"Unloaded LoRA adapter {name}", "error_message": None,
                    "loaded_adapters": self.loaded_adapters()}
        return self.sglang_answer(unload, lora=True)

    def pause_generation(self) -> dict:
        modes = {"abort": "abort", "retract": "wait", "in_place": "keep"}  # see scheduler.PAUSE_MODES
        mode = optional_field(self.read_object(optional=True), "mode", str) or "abort"
        if mode not in modes:
            raise ApiError(400, f"mode must be one of {', '.join(modes)}, not {mode!r}", param="mode")
        self.server.scheduler.pause(modes[mode])
        return {"message": "Generation paused successfully.", "status": "ok"}

    def continue_generation(self) -> dict:
        self.read_object(optional=True)
        self.server.scheduler.resume()
        return {"message": "Generation continued successfully.", "status": "ok"}


def text_field(body: dict, name: str) -> str:
    if not isinstance(body.get(name), str) or not body[name]:
        raise ApiError(400, f"{name} must be a non-empty string", param=name)
    return body[name]


def optional_field(body: dict, name: str, kind: type):
    value = body.get(name)
    if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
        raise ApiError(400, f"{name} must be a {kind.__name__}", param=name)
    return value

