"""Sampling and the batch decoder: one prefill and a token-by-token loop over a shared KV cache."""
import time
from dataclasses import dataclass
from typing import Callable

import torch
from transformers import DynamicCache

from .chat import Sequence
from .engine import Engine
from .kv_cache import can_assemble, growing_cache, left_padded_cache


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
    greedy = temperature <= 0
    if not bool(greedy.any()):  # an argmax over the vocabulary costs as much as the softmax
        return sampled
    return torch.where(greedy, logits.argmax(dim=-1), sampled)


def record_logprobs(logits: torch.Tensor, tokens: torch.Tensor, rows: list[int], seqs: list[Sequence]) -> None:
    """Appends to each of seqs (the sequences of batch rows `rows`, which asked for log-probabilities)
    its sampled token's log-probability and its request's top k. They are those of the raw model
    distribution, log_softmax of the logits before temperature and top_p (vLLM's default
    "raw_logprobs"), in float32 whatever the model's dtype. Only these rows pay for the log_softmax."""
    index = torch.tensor(rows, device=logits.device)
    logprobs = torch.log_softmax(logits[index].float(), dim=-1)
    chosen = logprobs.gather(-1, tokens[index][:, None])[:, 0].tolist()
    k = max(s.completion.top_logprobs for s in seqs)
    if k:
        values, ids = logprobs.topk(k, dim=-1)
        values, ids = values.tolist(), ids.tolist()
    else:
        values = ids = [[] for _ in seqs]
    for s, logprob, row_values, row_ids in zip(seqs, chosen, values, ids):
        k = s.completion.top_logprobs
        s.logprobs.append((logprob, list(zip(row_ids[:k], row_values[:k]))))


def decode(engine: Engine, token_ids: list[int]) -> str:
    with engine.tokenizer_lock:
        return engine.tokenizer.decode(token_ids, skip_special_tokens=True)


def finish_reason_after(engine: Engine, s: Sequence) -> str | None:
    """Appends nothing; decides whether s stops after its latest token, and sets s.text."""
    c = s.completion
    if s.token_ids[-1] in engine.eos_ids and not c.ignore_eos:
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
def decode_batch(engine: Engine, seqs: list[Sequence], aborted: Callable[[Sequence], bool] = lambda s: False) -> "BatchStats":
    """Decodes seqs to completion together, each row with its request's adapter (or none); returns
    what it computed. A sequence for which `aborted` turns true ends after its next
    token with finish_reason "abort". The caller holds engine.lock."""
    try:
        return decode_rows(engine, seqs, aborted)
    finally:
        engine.adapters.select([])


@dataclass
class Prefill:
    cache: DynamicCache  # rows left-padded to the longest prompt
    logits: torch.Tensor  # [rows, vocabulary] at each row's last prompt position
    mask: torch.Tensor  # [rows, width]: 1 where a row has a prompt token
    next_position: torch.Tensor  # [rows]: each row's prompt length
    computed: int  # prompt positions the model computed (padding included)


def prefill(engine: Engine, seqs: list[Sequence], share_prefixes: bool | None = None) -> Prefill:
    """Runs the prompts through the model.

    The n choices of a request share their prompt and adapter: each distinct pair is computed once
    and its KV cache copied to its rows, which saves (n - 1) / n of the prefill. On CPU the distinct
    prompts are also computed one after another, each from the longest prefix it shares with a prompt
    computed before it (same adapter), and no padding is computed: the test prompts of one problem
    repeat its instructions and question and differ in the candidate's code, which pads a batch to the
    longest candidate. `share_prefixes` False takes one padded batch instead (CUDA; tests compare)."""
    device = engine.device
    distinct, source, seen = [], [], {}  # first row of each distinct pair; distinct pair of each row
    for row, s in enumerate(seqs):
        key = (id(s.completion.adapter), tuple(s.completion.prompt_ids))
        if key not in seen:
            seen[key] = len(distinct)
            distinct.append(row)
        source.append(seen[key])

    prompts = [s.completion.prompt_ids for s in seqs]
    adapters = [s.completion.adapter for s in seqs]
    width = max(len(p) for p in prompts)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        mask[row, width - len(p):] = 1
    mask = mask.to(device)
    if share_prefixes is None:
        share_prefixes = device.type == "cpu" and can_assemble(engine.model.config)
    if share_prefixes:
        cache, logits, computed = prefill_each(engine, [prompts[r] for r in distinct], [adapters[r] for r in distinct],
                                               source, width)
    else:
        cache, logits, computed = prefill_padded(engine, prompts, adapters, mask, distinct, source)
    engine.adapters.select(adapters)
    next_position = torch.tensor([len(p) for p in prompts], device=device)
    return Prefill(cache, logits, mask, next_position, computed)


def prefill_padded(engine: Engine, prompts: list[list[int]], adapters: list, mask: torch.Tensor,
                   distinct: list[int], source: list[int]) -> tuple[DynamicCache, torch.Tensor, int]:
    """The distinct prompts as one left-padded batch: one forward pass, padding computed too."""
    device, model = engine.device, engine.model
    width = mask.shape[1]
    pad = next(iter(engine.eos_ids))  # any valid id: padded positions are masked out
    input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    for row, p in enumerate(prompts):
        input_ids[row, width - len(p):] = torch.tensor(p)
    input_ids = input_ids.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    engine.adapters.select([adapters[row] for row in distinct])
    firsts = torch.tensor(distinct, device=device)
    cache = growing_cache(model.config) if device.type == "cpu" else DynamicCache(config=model.config)
    logits = model(input_ids=input_ids[firsts], attention_mask=mask[firsts], position_ids=positions[firsts],
                   cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
    if len(distinct) < len(prompts):
        rows = torch.tensor(source, device=device)
        cache.batch_select_indices(rows)
        logits = logits[rows]
    return cache, logits, len(distinct) * width


def shared_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefill_each(engine: Engine, prompts: list[list[int]], adapters: list, source: list[int],
                 width: int) -> tuple[DynamicCache, torch.Tensor, int]:
    """Each distinct prompt alone (batch of one, no padding), starting from the keys and values of the
    longest prefix it shares with a prompt computed before it under the same adapter (at least its last
    token is computed, for its logits). Keys and values depend only on the tokens before them, so the
    shared prefix's are the same whichever prompt computed them. Returns the rows' left-padded cache."""
    device, model = engine.device, engine.model
    states, logits, computed = [], [], 0  # per distinct prompt: per layer (keys, values) [1, KV, L, D]
    for i, (prompt, adapter) in enumerate(zip(prompts, adapters)):
        start, donor = 0, None
        for j in range(i):
            if adapters[j] is adapter:
                n = min(shared_prefix(prompts[j], prompt), len(prompt) - 1)
                if n > start:
                    start, donor = n, j
        cache = DynamicCache(config=model.config)
        if donor is not None:
            for layer, (keys, values) in enumerate(states[donor]):
                cache.update(keys[:, :, :start], values[:, :, :start], layer)
        engine.adapters.select([adapter])
        out = model(input_ids=torch.tensor([prompt[start:]], device=device),
                    position_ids=torch.arange(start, len(prompt), device=device)[None],
                    cache=cache, use_cache=True, logits_to_keep=1)
        logits.append(out.logits[:, -1, :])
        states.append([(layer.keys, layer.values) for layer in cache.layers])
        computed += len(prompt) - start
    rows = torch.tensor(source, device=device)
    return left_padded_cache(model.config, [states[d] for d in source], width), torch.cat(logits)[rows], computed


@dataclass
class BatchStats:
    prompt_tokens: int  # prompt positions the prefill computed
    prefill_seconds: float
    generated: int  # tokens generated, all rows together


def decode_rows(engine: Engine, seqs: list[Sequence], aborted: Callable[[Sequence], bool]) -> BatchStats:
    device, model = engine.device, engine.model
    temperature = torch.tensor([s.completion.temperature for s in seqs], device=device)
    top_p = torch.tensor([s.completion.top_p for s in seqs], device=device)
    started = time.monotonic()
    first = prefill(engine, seqs)
    stats = BatchStats(first.computed, time.monotonic() - started, 0)
    cache, logits, mask, next_position = first.cache, first.logits, first.mask, first.next_position
    active = list(range(len(seqs)))  # seqs index of each batch row
    while True:
        uniform = torch.stack([torch.rand((), generator=seqs[i].generator) for i in active]).to(device)
        tokens = sample_tokens(logits.float(), temperature, top_p, uniform)
        asking = [row for row, i in enumerate(active) if seqs[i].completion.logprobs]
        if asking:
            record_logprobs(logits, tokens, asking, [seqs[active[row]] for row in asking])
        keep = []
        for row, (i, token) in enumerate(zip(active, tokens.tolist())):
            s = seqs[i]
            s.token_ids.append(token)
            stats.generated += 1
            s.finish_reason = finish_reason_after(engine, s)
            if s.finish_reason is None and aborted(s):
                s.finish_reason, s.text = "abort", decode(engine, s.token_ids)
            if s.finish_reason is None:
                keep.append(row)
        if not keep:
            return stats
        if len(keep) < len(active):  # drop finished rows so they cost nothing from here on
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            engine.adapters.keep_rows(keep)
            mask, next_position, tokens = mask[rows], next_position[rows], tokens[rows]
            temperature, top_p = temperature[rows], top_p[rows]
            active = [active[r] for r in keep]
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=next_position[:, None],
                       cache=cache, use_cache=True).logits[:, -1, :]
        next_position = next_position + 1


