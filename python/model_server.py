"""
Embedded OpenAI-compatible model server: serves one Hugging Face checkpoint directory on loopback so
the Code-A1 pipeline runs on a machine without a GPU or a hub. Real runs point the same client config
at vLLM instead (README, "Embedded model server").

    python python/model_server.py --checkpoint DIR --model-name NAME --port 8000

Endpoints
    GET  /health                 liveness and counters
    GET  /v1/models              the served model and the checkpoint behind it
    POST /v1/chat/completions    messages, n, temperature, top_p, max_tokens, seed, stop
    POST /v1/load_checkpoint     {"path": DIR}: swap in new weights without restarting

Extensions to the OpenAI response (the same names vLLM uses for `return_token_ids`), returned
unless the request sets "return_token_ids": false:
    prompt_token_ids            the rendered prompt's token ids, exactly what the model was fed
    choices[i].token_ids        every sampled token id, including the end-of-turn token or the
                                tokens that completed a stop string; message.content is their text
                                with special tokens dropped and cut before the stop string
    system_fingerprint          "ckpt-<server>-v<version>": which loaded checkpoint of which server
                                process produced the sample (a restarted server has another
                                <server>, so a client can tell its initial weights from a reload)

Seeds: choice i of a request with seed s samples from its own torch.Generator seeded from (s, i),
drawing one uniform number per token. The same request with the same seed therefore draws the same
random numbers whatever else is in the batch, and yields the same tokens when the model computes the
same logits. Logits can differ in the last bits when a request shares a batch (other padding, other
matrix shapes), which flips a sample only at a near tie. Without a seed each choice draws a fresh one.

Batching: sequences (n per request) wait up to batch_wait_ms in a queue; the scheduler thread decodes
up to max_batch of them together (left padding, one KV cache), drops finished rows from the batch,
and takes the next batch when this one is done. A reload swaps the weights between batches, so a
batch in flight finishes on the weights it started with.
"""
import argparse
import hashlib
import json
import logging
import math
import os
import queue
import secrets
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The server never downloads anything; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

log = logging.getLogger("model_server")


@dataclass
class ServerConfig:
    checkpoint: str  # Hugging Face checkpoint directory (config, tokenizer with chat template, weights)
    model_name: str = "smollm2-135m-instruct"  # the only name /v1/chat/completions accepts
    host: str = "127.0.0.1"  # loopback: the server has no authentication
    port: int = 8000  # 0 picks a free port (logged on start)
    max_batch: int = 16  # sequences decoded together; the KV cache is ~46 KB/token for SmolLM2-135M
    batch_wait_ms: float = 5.0  # how long the first queued sequence waits for company
    max_n: int = 128  # largest n per request
    dtype: str = "auto"  # auto = bfloat16 on CUDA, float32 on CPU; or float32/bfloat16/float16
    threads: int = 0  # torch intra-op threads; 0 = all cores (HTTP threads mostly sleep)
    max_body_bytes: int = 16 << 20


class ApiError(Exception):
    """An error answered to the client in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    def body(self) -> dict:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


# --------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class Engine:
    """One loaded checkpoint. Never mutated after loading: a reload builds a new one and swaps it."""

    model: torch.nn.Module
    tokenizer: object
    path: str
    version: int
    device: torch.device
    eos_ids: frozenset[int]
    max_model_len: int
    loaded_at: float
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)  # fast tokenizers are not re-entrant

    @property
    def fingerprint(self) -> str:
        return f"ckpt-{SERVER_INSTANCE}-v{self.version}"


# Versions restart at 0 with the process; this tells one process's v1 from the next one's.
SERVER_INSTANCE = secrets.token_hex(4)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"unknown dtype {name!r}; use auto, {', '.join(dtypes)}")
    return dtypes[name]


def load_engine(path: str, version: int, dtype_name: str, fallback_tokenizer=None) -> Engine:
    """Loads a checkpoint and checks it is usable before anyone is served from it.

    A directory without tokenizer files (a trainer that saves weights only) reuses fallback_tokenizer:
    policy updates do not change the vocabulary."""
    started = time.time()
    ckpt = Path(path)
    if not (ckpt / "config.json").is_file():
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_dtype(dtype_name, device)
    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, output_loading_info=True)
    # transformers fills missing weights with random values and only warns: refuse instead.
    problems = {k: sorted(v)[:5] for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise ValueError(f"checkpoint weights do not match the model: {problems or info['error_msgs']}")
    model.to(device).eval()

    has_tokenizer = (ckpt / "tokenizer.json").is_file() or (ckpt / "tokenizer_config.json").is_file()
    if has_tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(path)
    elif fallback_tokenizer is not None:
        tokenizer = fallback_tokenizer
    else:
        raise ValueError(f"{path} has no tokenizer files")
    if not tokenizer.chat_template:
        raise ValueError(f"the tokenizer of {path} has no chat template")

    gen_eos = model.generation_config.eos_token_id
    eos_ids = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    assert eos_ids, "no end-of-sequence token: generation would only ever stop at max_tokens"

    # One forward pass catches weights that load but are garbage (NaN/inf after a diverged update).
    probe = torch.tensor([[next(iter(eos_ids))]], device=device)
    with torch.inference_mode():
        logits = model(input_ids=probe, use_cache=False).logits
    if not torch.isfinite(logits).all():
        raise ValueError(f"checkpoint {path} produces non-finite logits")

    engine = Engine(
        model=model,
        tokenizer=tokenizer,
        path=str(path),
        version=version,
        device=device,
        eos_ids=frozenset(eos_ids),
        max_model_len=int(model.config.max_position_embeddings),
        loaded_at=time.time(),
    )
    log.info("loaded %s (v%d) on %s/%s in %.1fs", path, version, device, dtype, time.time() - started)
    return engine


# --------------------------------------------------------------------------------------------------
# Requests


@dataclass
class Completion:
    """One /v1/chat/completions request on its way through the scheduler."""

    messages: list[dict]
    prompt_ids: list[int]
    tokenizer: object  # the tokenizer prompt_ids were made with
    n: int
    temperature: float
    top_p: float
    max_tokens: int | None  # None: up to the model's context length
    stop: list[str]
    seed: int | None
    return_token_ids: bool
    sequences: list["Sequence"] = field(default_factory=list)
    engine: Engine | None = None  # the engine that decoded it (set by the scheduler)
    error: ApiError | None = None
    remaining: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def finish_sequence(self) -> None:
        self.remaining -= 1  # only the scheduler thread calls this
        if self.remaining == 0:
            self.done.set()

    def fail(self, error: ApiError) -> None:
        self.error = error
        self.done.set()


@dataclass
class Sequence:
    completion: Completion
    index: int  # choice index
    generator: torch.Generator
    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None


def choice_seed(seed: int, index: int) -> int:
    """A 63-bit seed for choice `index` of a request seeded with `seed`. Hashing keeps (s, i) and
    (s + 1, i - 1) apart, so callers can number requests with consecutive seeds."""
    digest = hashlib.blake2b(f"{seed}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def message_text(content, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        if all(isinstance(p.get("text"), str) for p in content):
            return "".join(p["text"] for p in content)
    raise ApiError(400, f"messages[{index}].content must be a string or a list of text parts", param="messages")


def render_prompt(engine: Engine, messages: list[dict]) -> list[int]:
    with engine.tokenizer_lock:
        try:
            text = engine.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception as e:  # templates may reject e.g. roles that do not alternate
            raise ApiError(400, f"the chat template rejected the messages: {e}", param="messages") from e
        # The template already writes the special tokens (e.g. <|im_start|>); do not add a BOS twice.
        return engine.tokenizer(text, add_special_tokens=False)["input_ids"]


def number(body: dict, name: str, default: float, lo: float, hi: float, lo_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(400, f"{name} must be a finite number", param=name)
    if value < lo or value > hi or (lo_open and value == lo):
        raise ApiError(400, f"{name} must be in {'(' if lo_open else '['}{lo}, {hi}]", param=name)
    return float(value)


def integer(body: dict, name: str, lo: int, hi: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer", param=name)
    if value < lo or (hi is not None and value > hi):
        raise ApiError(400, f"{name} must be between {lo} and {hi}" if hi else f"{name} must be >= {lo}", param=name)
    return value


def parse_chat_request(body, cfg: ServerConfig, engine: Engine) -> Completion:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model", cfg.model_name)  # lenient like vLLM: a missing model means the served one
    if model != cfg.model_name:
        raise ApiError(404, f"The model `{model}` does not exist; this server serves `{cfg.model_name}`",
                       code="model_not_found", param="model")
    if body.get("stream"):
        raise ApiError(400, "stream is not supported by the embedded server", param="stream")
    if body.get("logprobs"):
        raise ApiError(400, "logprobs is not supported by the embedded server", param="logprobs")
    # Silently ignoring these would sample from a different distribution than the caller asked for.
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise ApiError(400, f"{name} is not supported by the embedded server", param=name)
    if body.get("logit_bias"):
        raise ApiError(400, "logit_bias is not supported by the embedded server", param="logit_bias")

    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "messages must be a non-empty list", param="messages")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise ApiError(400, f"messages[{i}] needs a role of system, user or assistant", param="messages")
        messages.append({"role": m["role"], "content": message_text(m.get("content"), i)})

    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 16 or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "stop must be a non-empty string or a list of up to 16 of them", param="stop")
    return_token_ids = body.get("return_token_ids", True)
    if not isinstance(return_token_ids, bool):
        raise ApiError(400, "return_token_ids must be a boolean", param="return_token_ids")

    max_tokens = integer(body, "max_tokens", 1)
    if max_tokens is None:
        max_tokens = integer(body, "max_completion_tokens", 1)
    seed = integer(body, "seed", -(2**63))
    completion = Completion(
        messages=messages,
        prompt_ids=render_prompt(engine, messages),
        tokenizer=engine.tokenizer,
        n=integer(body, "n", 1, cfg.max_n) or 1,
        temperature=number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=number(body, "top_p", 1.0, 0.0, 1.0, lo_open=True),
        max_tokens=max_tokens,
        stop=stop,
        seed=seed,
        return_token_ids=return_token_ids,
    )
    check_context(completion, engine)
    return completion


def check_context(c: Completion, engine: Engine) -> None:
    need = len(c.prompt_ids) + (c.max_tokens or 1)
    if need > engine.max_model_len:
        raise ApiError(400, f"This model's maximum context length is {engine.max_model_len} tokens; the "
                       f"prompt has {len(c.prompt_ids)} and max_tokens asks for {c.max_tokens}",
                       code="context_length_exceeded", param="messages")


def response_body(c: Completion, cfg: ServerConfig) -> dict:
    choices = []
    for s in c.sequences:
        choice = {"index": s.index, "message": {"role": "assistant", "content": s.text},
                  "logprobs": None, "finish_reason": s.finish_reason}
        if c.return_token_ids:
            choice["token_ids"] = s.token_ids
        choices.append(choice)
    completion_tokens = sum(len(s.token_ids) for s in c.sequences)
    body = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": cfg.model_name,
        "system_fingerprint": c.engine.fingerprint,
        "choices": choices,
        "usage": {"prompt_tokens": len(c.prompt_ids), "completion_tokens": completion_tokens,
                  "total_tokens": len(c.prompt_ids) + completion_tokens},
    }
    if c.return_token_ids:
        body["prompt_token_ids"] = c.prompt_ids
    return body


# --------------------------------------------------------------------------------------------------
# Sampling and the batch decoder


def sample_tokens(logits: torch.Tensor, temperature: torch.Tensor, top_p: torch.Tensor,
                  uniform: torch.Tensor) -> torch.Tensor:
    """Next token per row from float32 logits [B, V], each row with its own temperature, top_p and
    uniform number in [0, 1). Temperature 0 is greedy.

    1. probs = softmax(logits / temperature)
    2. nucleus (only if some row asks): sort descending and drop every token whose preceding mass
       already reaches top_p; the most likely token always stays
    3. inverse CDF: the first token whose cumulative mass exceeds uniform * total mass"""
    probs = torch.softmax(logits / temperature.clamp(min=1e-5)[:, None], dim=-1)
    order = None
    if bool((top_p < 1.0).any()):
        probs, order = probs.sort(dim=-1, descending=True)
        probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= top_p[:, None], 0.0)
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1])[:, None]
    index = torch.searchsorted(cdf, target, right=True).clamp(max=logits.shape[-1] - 1)
    sampled = (order.gather(-1, index) if order is not None else index)[:, 0]
    return torch.where(temperature <= 0, logits.argmax(dim=-1), sampled)


def decode(engine: Engine, token_ids: list[int]) -> str:
    with engine.tokenizer_lock:
        return engine.tokenizer.decode(token_ids, skip_special_tokens=True)


def finish_reason_after(engine: Engine, s: Sequence) -> str | None:
    """Appends nothing; decides whether s stops after its latest token, and sets s.text."""
    c = s.completion
    if s.token_ids[-1] in engine.eos_ids:
        s.text = decode(engine, s.token_ids)
        return "stop"
    if c.stop:
        # Whole-text decode each step: simple and exact across token boundaries; costs ~O(n^2) in
        # characters, negligible next to the model's step time at these lengths.
        text = decode(engine, s.token_ids)
        hits = [text.find(stop) for stop in c.stop if stop in text]
        if hits:
            s.text = text[: min(hits)]
            return "stop"
    limit = c.max_tokens or engine.max_model_len - len(c.prompt_ids)
    if len(s.token_ids) >= limit:
        s.text = decode(engine, s.token_ids)
        return "length"
    return None


@torch.inference_mode()
def decode_batch(engine: Engine, seqs: list[Sequence]) -> int:
    """Decodes seqs to completion together; returns the number of tokens generated."""
    device, model = engine.device, engine.model
    prompts = [s.completion.prompt_ids for s in seqs]
    width = max(len(p) for p in prompts)
    pad = next(iter(engine.eos_ids))  # any valid id: padded positions are masked out
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, p in enumerate(prompts):  # left padding: every row's next token goes in the last column
        input_ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    temperature = torch.tensor([s.completion.temperature for s in seqs], device=device)
    top_p = torch.tensor([s.completion.top_p for s in seqs], device=device)

    cache = DynamicCache(config=model.config)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                   use_cache=True, logits_to_keep=1).logits[:, -1, :]
    next_position = positions[:, -1] + 1
    active = list(range(len(seqs)))  # seqs index of each batch row
    generated = 0
    while True:
        uniform = torch.stack([torch.rand((), generator=seqs[i].generator) for i in active]).to(device)
        tokens = sample_tokens(logits.float(), temperature, top_p, uniform)
        keep = []
        for row, (i, token) in enumerate(zip(active, tokens.tolist())):
            s = seqs[i]
            s.token_ids.append(token)
            generated += 1
            s.finish_reason = finish_reason_after(engine, s)
            if s.finish_reason is None:
                keep.append(row)
        if not keep:
            return generated
        if len(keep) < len(active):  # drop finished rows so they cost nothing from here on
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            mask, next_position, tokens = mask[rows], next_position[rows], tokens[rows]
            temperature, top_p = temperature[rows], top_p[rows]
            active = [active[r] for r in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                       cache=cache, use_cache=True).logits[:, -1, :]
        next_position = next_position + 1


class Scheduler:
    """Collects queued sequences into batches and decodes them on one thread."""

    def __init__(self, cfg: ServerConfig, engine: Engine):
        self.cfg = cfg
        self.engine = engine  # replaced whole by a reload; read once per batch
        self.queue: queue.Queue[Sequence] = queue.Queue()
        self.stats = {"batches": 0, "sequences": 0, "generated_tokens": 0, "busy_seconds": 0.0}
        threading.Thread(target=self.run, name="scheduler", daemon=True).start()

    def submit(self, c: Completion) -> None:
        c.remaining = c.n
        for i in range(c.n):
            g = torch.Generator()
            g.manual_seed(choice_seed(c.seed, i) if c.seed is not None else secrets.randbits(63))
            c.sequences.append(Sequence(completion=c, index=i, generator=g))
        for s in c.sequences:
            self.queue.put(s)

    def next_batch(self) -> list[Sequence]:
        batch = [self.queue.get()]
        deadline = time.monotonic() + self.cfg.batch_wait_ms / 1000
        while len(batch) < self.cfg.max_batch:
            try:
                batch.append(self.queue.get(timeout=max(deadline - time.monotonic(), 0)))
            except queue.Empty:
                break
        return batch

    def run(self) -> None:
        while True:
            batch = self.next_batch()
            try:
                self.run_once(batch)
            except Exception as e:  # waiting HTTP threads must always be answered
                log.exception("scheduler failed on a batch of %d sequences", len(batch))
                for s in batch:
                    if not s.completion.done.is_set():
                        s.completion.fail(ApiError(500, f"scheduler error: {type(e).__name__}: {e}"))

    def run_once(self, batch: list[Sequence]) -> None:
        batch = [s for s in batch if s.completion.error is None]
        engine = self.engine
        for s in batch:
            c = s.completion
            if c.engine is None:
                c.engine = engine
                if c.tokenizer is not engine.tokenizer:  # a reload brought a new tokenizer
                    try:
                        c.prompt_ids, c.tokenizer = render_prompt(engine, c.messages), engine.tokenizer
                        check_context(c, engine)
                    except ApiError as e:
                        c.fail(e)
        # All sequences of a request run on the engine that decoded its first one, so that its
        # choices come from one checkpoint; a reload between its batches keeps the old engine.
        by_engine: dict[int, list[Sequence]] = {}
        for s in batch:
            if s.completion.error is None:
                by_engine.setdefault(id(s.completion.engine), []).append(s)
        for seqs in by_engine.values():
            self.run_batch(seqs[0].completion.engine, seqs)

    def run_batch(self, engine: Engine, seqs: list[Sequence]) -> None:
        started = time.monotonic()
        try:
            generated = decode_batch(engine, seqs)
        except Exception as e:  # a failed batch fails its requests, never the server
            log.exception("batch of %d sequences failed", len(seqs))
            for s in seqs:
                s.completion.fail(ApiError(500, f"generation failed: {type(e).__name__}: {e}"))
            return
        elapsed = time.monotonic() - started
        self.stats["batches"] += 1
        self.stats["sequences"] += len(seqs)
        self.stats["generated_tokens"] += generated
        self.stats["busy_seconds"] += elapsed
        log.debug("batch of %d: %d tokens in %.2fs", len(seqs), generated, elapsed)
        for s in seqs:
            s.completion.finish_sequence()


# --------------------------------------------------------------------------------------------------
# HTTP


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung client must not keep the process alive on shutdown

    def __init__(self, cfg: ServerConfig, scheduler: Scheduler):
        self.cfg, self.scheduler = cfg, scheduler
        self.load_lock = threading.Lock()  # one checkpoint load at a time
        super().__init__((cfg.host, cfg.port), Handler)

    def load_checkpoint(self, path: str) -> Engine:
        with self.load_lock:
            current = self.scheduler.engine
            try:
                engine = load_engine(path, current.version + 1, self.cfg.dtype, fallback_tokenizer=current.tokenizer)
            except Exception as e:
                log.warning("reload of %s failed, still serving %s: %s", path, current.path, e)
                raise ApiError(400, f"could not load checkpoint {path}: {type(e).__name__}: {e}",
                               code="checkpoint_load_failed", param="path") from e
            self.scheduler.engine = engine  # one reference assignment: the next batch sees it
            return engine


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

    def do_GET(self):
        routes = {"/health": self.health, "/v1/models": self.models}
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/v1/models/"):
            return self.handle_errors(lambda: self.model(path.removeprefix("/v1/models/")))
        self.handle_errors(routes.get(path, self.not_found))

    def do_POST(self):
        routes = {"/v1/chat/completions": self.chat_completions, "/v1/load_checkpoint": self.load_checkpoint}
        self.handle_errors(routes.get(self.path.split("?", 1)[0].rstrip("/"), self.not_found))

    def not_found(self):
        if self.command == "POST" and self.headers.get("Content-Length", "").isdigit():
            self.rfile.read(int(self.headers["Content-Length"]))  # keep the connection in sync
        raise ApiError(404, f"no route {self.command} {self.path}", code="not_found")

    def health(self) -> dict:
        s = self.server.scheduler
        return {"status": "ok", "model": self.server.cfg.model_name, "checkpoint_version": s.engine.version,
                "queued_sequences": s.queue.qsize(), **s.stats}

    def model_card(self) -> dict:
        e = self.server.scheduler.engine
        return {"id": self.server.cfg.model_name, "object": "model", "created": int(e.loaded_at),
                "owned_by": "code-a1", "root": e.path, "max_model_len": e.max_model_len,
                "checkpoint": {"path": e.path, "version": e.version, "fingerprint": e.fingerprint}}

    def models(self) -> dict:
        return {"object": "list", "data": [self.model_card()]}

    def model(self, name: str) -> dict:
        if name != self.server.cfg.model_name:
            raise ApiError(404, f"The model `{name}` does not exist", code="model_not_found", param="model")
        return self.model_card()

    def chat_completions(self) -> dict:
        c = parse_chat_request(self.read_json(), self.server.cfg, self.server.scheduler.engine)
        self.server.scheduler.submit(c)
        c.done.wait()
        if c.error is not None:
            raise c.error
        return response_body(c, self.server.cfg)

    def load_checkpoint(self) -> dict:
        body = self.read_json()
        path = body.get("path") if isinstance(body, dict) else None
        if not isinstance(path, str) or not path:
            raise ApiError(400, "path must be a checkpoint directory", param="path")
        if not Path(path).is_dir():
            raise ApiError(400, f"{path} is not a directory", code="checkpoint_not_found", param="path")
        e = self.server.load_checkpoint(str(Path(path).resolve()))
        return {"model": self.server.cfg.model_name, "path": e.path, "version": e.version}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Embedded OpenAI-compatible model server")
    defaults = ServerConfig(checkpoint="")
    parser.add_argument("--checkpoint", required=True, help="Hugging Face checkpoint directory")
    parser.add_argument("--model-name", default=defaults.model_name)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--max-batch", type=int, default=defaults.max_batch)
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms)
    parser.add_argument("--dtype", default=defaults.dtype, choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    cfg = ServerConfig(checkpoint=args.checkpoint, model_name=args.model_name, host=args.host, port=args.port,
                       max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, dtype=args.dtype,
                       threads=args.threads)
    assert cfg.max_batch >= 1, "--max-batch must be at least 1"

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    hf_logging.disable_progress_bar()
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    torch.set_num_interop_threads(1)  # one model call at a time: inter-op parallelism only oversubscribes

    engine = load_engine(str(Path(cfg.checkpoint).resolve()), 1, cfg.dtype)
    server = Server(cfg, Scheduler(cfg, engine))
    host, port = server.server_address[:2]
    # shutdown() blocks until serve_forever returns, so it must run on another thread.
    stop = lambda *_: threading.Thread(target=server.shutdown, daemon=True).start()  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving %s at http://%s:%d/v1", cfg.model_name, host, port)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
