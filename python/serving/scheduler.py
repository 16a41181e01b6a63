"""Batching: queued sequences are collected into batches and decoded on one thread."""
import logging
import queue
import secrets
import threading
import time

import torch

from .chat import Completion, Sequence, check_context, choice_seed, render_prompt
from .config import ApiError, ServerConfig
from .decoding import decode_batch
from .engine import Engine

log = logging.getLogger("model_server")


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
            engine = seqs[0].completion.engine
            # Adapters are installed and removed under this lock: none changes while the batch computes.
            with engine.lock:
                seqs = [s for s in seqs if bind_adapter(s.completion, engine)]
                if seqs:
                    self.run_batch(engine, seqs)

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




def bind_adapter(c: Completion, engine: Engine) -> bool:
    """Resolves the adapter a request names on the engine that decodes it, once: later sequences of the
    request use the same load of it. False (and the request failed) when that adapter is not loaded."""
    if c.error is not None:
        return False
    if c.adapter_name is None:
        return True
    if c.adapter is None:
        c.adapter = engine.adapters.get(c.adapter_name)
        if c.adapter is None:
            c.fail(ApiError(404, f"The model `{c.adapter_name}` was unloaded before the request was decoded",
                            code="model_not_found", param="model"))
            return False
    if not c.adapter.loaded:
        c.fail(ApiError(404, f"The model `{c.adapter_name}` was unloaded while the request was decoded",
                        code="model_not_found", param="model"))
        return False
    return True
