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


# How a pause treats requests in flight (the batch being decoded) and queued, named as vLLM's /pause does:
#   abort  every request submitted before the pause ends at once (in flight: after its next token) with
#          finish_reason "abort" and what it generated so far; vLLM's and SGLang's default
#   wait   the batch in flight finishes; the pause answers when it has
#   keep   the pause answers at once; the batch in flight still finishes (vLLM freezes it in place
#          instead; a frozen batch here would hold the adapters' lock, which adapter loads need)
# Queued requests and those sent while paused wait for the resume (except in abort mode).
PAUSE_MODES = ("abort", "wait", "keep")


class Scheduler:
    """Collects queued sequences into batches and decodes them on one thread."""

    def __init__(self, cfg: ServerConfig, engine: Engine):
        self.cfg = cfg
        self.engine = engine  # replaced whole by a reload; read once per batch
        self.queue: queue.Queue[Sequence] = queue.Queue()
        self.stats = {"batches": 0, "sequences": 0, "generated_tokens": 0, "prompt_tokens": 0, "prefill_seconds": 0.0,
                      "busy_seconds": 0.0}
        # Pausing: `state` guards the fields below; the scheduler thread waits on it while paused.
        self.state = threading.Condition()
        self.paused = False
        self.busy = False  # a batch is being decoded
        self.held = 0  # sequences taken from the queue and held back by the pause
        self.submitted = 0  # requests submitted so far (numbers them)
        self.abort_upto = 0  # requests numbered up to this end with finish_reason "abort"
        threading.Thread(target=self.run, name="scheduler", daemon=True).start()

    def pause(self, mode: str) -> None:
        """Stops decoding new batches until resume(); see PAUSE_MODES for `mode`."""
        assert mode in PAUSE_MODES, mode
        with self.state:
            self.paused = True
            if mode == "abort":
                self.abort_upto = self.submitted
                self.state.notify_all()  # a batch held by an earlier pause is to be answered now
            if mode != "keep":
                while self.busy:
                    self.state.wait()

    def resume(self) -> None:
        with self.state:
            self.paused = False
            self.state.notify_all()

    def aborted(self, s: Sequence) -> bool:
        return s.completion.number <= self.abort_upto

    def submit(self, c: Completion) -> None:
        with self.state:
            self.submitted += 1
            c.number = self.submitted
        c.remaining = c.n
        for i in range(c.n):
            g = torch.Generator()
            g.manual_seed(choice_seed(c.seed, i) if c.seed is not None else secrets.randbits(63))
            c.sequences.append(Sequence(completion=c, index=i, generator=g))
        for s in c.sequences:
            self.queue.put(s)

    def next_batch(self) -> list[Sequence]:
        """The first queued sequence and those that join it. Each arrival restarts the wait: a stage's
        requests come one HTTP request apart (parsed and tokenized in turn), and one that missed the
        batch would wait for the whole batch to finish (a batch takes no new rows once it decodes)."""
        batch = [self.queue.get()]
        cap = time.monotonic() + self.cfg.max_batch_wait_ms / 1000
        while len(batch) < self.cfg.max_batch:
            wait = min(self.cfg.batch_wait_ms / 1000, cap - time.monotonic())
            if wait <= 0:
                break
            try:
                batch.append(self.queue.get(timeout=wait))
            except queue.Empty:
                break
        return batch

    def admit(self, batch: list[Sequence]) -> list[Sequence]:
        """What of the batch may be decoded now: waits while paused, and answers the sequences of
        aborted requests at once (finish_reason "abort", no tokens)."""
        with self.state:
            while True:
                for s in batch:
                    if self.aborted(s):
                        s.finish_reason = "abort"
                        s.completion.engine = s.completion.engine or self.engine  # its response names the weights
                        s.completion.finish_sequence()
                batch = [s for s in batch if not self.aborted(s)]
                if not batch or not self.paused:
                    break
                self.held = len(batch)
                self.state.wait()
            self.held = 0
            self.busy = bool(batch)
            return batch

    def run(self) -> None:
        while True:
            batch = self.admit(self.next_batch())
            try:
                if batch:
                    self.run_once(batch)
            except Exception as e:  # waiting HTTP threads must always be answered
                log.exception("scheduler failed on a batch of %d sequences", len(batch))
                for s in batch:
                    if not s.completion.done.is_set():
                        s.completion.fail(ApiError(500, f"scheduler error: {type(e).__name__}: {e}"))
            finally:
                with self.state:
                    self.busy = False
                    self.state.notify_all()  # a pause waiting for the batch in flight

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
            batch = decode_batch(engine, seqs, self.aborted)
        except Exception as e:  # a failed batch fails its requests, never the server
            log.exception("batch of %d sequences failed", len(seqs))
            for s in seqs:
                s.completion.fail(ApiError(500, f"generation failed: {type(e).__name__}: {e}"))
            return
        elapsed = time.monotonic() - started
        self.stats["batches"] += 1
        self.stats["sequences"] += len(seqs)
        self.stats["generated_tokens"] += batch.generated
        self.stats["prompt_tokens"] += batch.prompt_tokens
        self.stats["prefill_seconds"] += batch.prefill_seconds
        self.stats["busy_seconds"] += elapsed
        # One line per batch (a stage makes a few): how its requests were batched and where the time went.
        log.info("batch of %d sequences (%d requests): prefill %d tokens in %.1fs, %d generated in %.1fs",
                 len(seqs), len({id(s.completion) for s in seqs}), batch.prompt_tokens, batch.prefill_seconds,
                 batch.generated, elapsed - batch.prefill_seconds)
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
