"""/v1/chat/completions: parsing and checking a request, and writing the response."""
import hashlib
import math
import threading
import time
import uuid
from dataclasses import dataclass, field

import torch

from .adapters import Adapter
from .config import ApiError, ServerConfig
from .engine import Engine


@dataclass
class Completion:
    """One /v1/chat/completions request on its way through the scheduler."""

    model: str  # the name the request asked for: the base model's or an adapter's
    adapter_name: str | None  # None: the base model without any adapter
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
    logprobs: bool = False  # return each generated token's log-probability
    top_logprobs: int = 0  # and the k most likely tokens' at each position
    ignore_eos: bool = False  # vLLM's sampling extension: only max_tokens or a stop string ends a choice (benchmarks)
    number: int = 0  # order of submission (set by the scheduler): a pause in abort mode ends those up to its count
    sequences: list["Sequence"] = field(default_factory=list)
    engine: Engine | None = None  # the engine that decoded it (set by the scheduler)
    adapter: Adapter | None = None  # the adapter on that engine that decoded it (set by the scheduler)
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
    # per generated token, when the request asks: (log-probability, [(token id, log-probability)] of the top k)
    logprobs: list[tuple[float, list[tuple[int, float]]]] = field(default_factory=list)
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
    model = body.get("model", cfg.model_name)  # lenient like vLLM: a missing model means the base
    lora_path = body.get("lora_path")
    if lora_path is not None:  # SGLang's way of naming an adapter: the base as model, the adapter's name here
        if not isinstance(lora_path, str) or model != cfg.model_name:
            raise ApiError(400, "lora_path must be an adapter's name, with the base model as model", param="lora_path")
        model = lora_path
    if model != cfg.model_name and (not isinstance(model, str) or engine.adapters.get(model) is None):
        raise ApiError(404, f"The model `{model}` does not exist; this server serves `{cfg.model_name}`"
                       f"{''.join(f', `{name}`' for name in list(engine.adapters.by_name))}",
                       code="model_not_found", param="model")
    if body.get("stream"):
        raise ApiError(400, "stream is not supported by the embedded server", param="stream")
    # Silently ignoring these would sample from a different distribution than the caller asked for.
    # Clients send them with their neutral values so that no server applies its own defaults
    # (vLLM's top_k 0 and SGLang's -1 both mean no top-k).
    for name, neutral in (("presence_penalty", (0,)), ("frequency_penalty", (0,)), ("min_p", (0,)),
                          ("repetition_penalty", (1,)), ("top_k", (0, -1))):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or value not in neutral):
            raise ApiError(400, f"{name} is not supported by the embedded server (only {' or '.join(map(str, neutral))})", param=name)
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

    logprobs = body.get("logprobs") or False
    if not isinstance(logprobs, bool):
        raise ApiError(400, "logprobs must be a boolean", param="logprobs")
    top_logprobs = integer(body, "top_logprobs", 0, cfg.max_top_logprobs)
    if top_logprobs is not None and not logprobs:  # vLLM's rule, and OpenAI's
        raise ApiError(400, "when using top_logprobs, logprobs must be set to true", param="top_logprobs")

    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise ApiError(400, "ignore_eos must be a boolean", param="ignore_eos")
    if ignore_eos and body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        raise ApiError(400, "ignore_eos needs max_tokens", param="ignore_eos")

    max_tokens = integer(body, "max_tokens", 1)
    if max_tokens is None:
        max_tokens = integer(body, "max_completion_tokens", 1)
    seed = integer(body, "seed", -(2**63))
    completion = Completion(
        model=model,
        adapter_name=None if model == cfg.model_name else model,
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
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        ignore_eos=ignore_eos,
    )
    check_context(completion, engine)
    return completion


def check_context(c: Completion, engine: Engine) -> None:
    need = len(c.prompt_ids) + (c.max_tokens or 1)
    if need > engine.max_model_len:
        raise ApiError(400, f"This model's maximum context length is {engine.max_model_len} tokens; the "
                       f"prompt has {len(c.prompt_ids)} and max_tokens asks for {c.max_tokens}",
                       code="context_length_exceeded", param="messages")


def response_body(c: Completion) -> dict:
    choices = []
    for s in c.sequences:
        choice = {"index": s.index, "message": {"role": "assistant", "content": s.text},
                  "logprobs": logprobs_body(c.engine, s) if c.logprobs else None, "finish_reason": s.finish_reason}
        if c.return_token_ids:
            choice["token_ids"] = s.token_ids
        choices.append(choice)
    completion_tokens = sum(len(s.token_ids) for s in c.sequences)
    body = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": c.model,
        # exactly which weights answered: the base checkpoint's load, or the adapter's load on it
        "system_fingerprint": (c.adapter or c.engine).fingerprint,
        "choices": choices,
        "usage": {"prompt_tokens": len(c.prompt_ids), "completion_tokens": completion_tokens,
                  "total_tokens": len(c.prompt_ids) + completion_tokens},
    }
    if c.return_token_ids:
        body["prompt_token_ids"] = c.prompt_ids
    return body


def logprobs_body(engine: Engine, s: Sequence) -> dict:
    """OpenAI's choices[i].logprobs: one entry per generated token (token_ids), each token as its own
    decoded text and that text's UTF-8 bytes, as vLLM writes them."""
    texts: dict[int, str] = {}

    def entry(token_id: int, logprob: float) -> dict:
        if token_id not in texts:
            texts[token_id] = engine.tokenizer.decode([token_id])
        # JSON has no -inf; vLLM writes -9999.0 for tokens the model rules out
        return {"token": texts[token_id], "logprob": max(logprob, -9999.0), "bytes": list(texts[token_id].encode())}

    with engine.tokenizer_lock:
        content = [{**entry(token_id, logprob), "top_logprobs": [entry(i, lp) for i, lp in top]}
                   for token_id, (logprob, top) in zip(s.token_ids, s.logprobs)]
    return {"content": content}


