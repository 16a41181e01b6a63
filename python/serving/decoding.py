"""Sampling and the batch decoder: one prefill and a token-by-token loop over a shared KV cache."""
from typing import Callable

import torch
from transformers import DynamicCache

from .chat import Sequence
from .engine import Engine
from .kv_cache import growing_cache


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
def decode_batch(engine: Engine, seqs: list[Sequence], aborted: Callable[[Sequence], bool] = lambda s: False) -> int:
    """Decodes seqs to completion together, each row with its request's adapter (or none); returns
    the number of tokens generated. A sequence for which `aborted` turns true ends after its next
    token with finish_reason "abort". The caller holds engine.lock."""
    try:
        return decode_rows(engine, seqs, aborted)
    finally:
        engine.adapters.select([])


def prefill(engine: Engine, seqs: list[Sequence]) -> tuple[DynamicCache, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Runs the prompts through the model, left-padded so that every row's next token goes in the last
    column; returns the KV cache, the last logits, the attention mask and each row's next position.

    The n choices of a request share their prompt and adapter: each distinct pair is computed once
    and its KV cache copied to its rows, which saves (n - 1) / n of the prefill."""
    device, model = engine.device, engine.model
    distinct, source, seen = [], [], {}  # first row of each distinct pair; distinct pair of each row
    for row, s in enumerate(seqs):
        key = (id(s.completion.adapter), tuple(s.completion.prompt_ids))
        if key not in seen:
            seen[key] = len(distinct)
            distinct.append(row)
        source.append(seen[key])

    prompts = [s.completion.prompt_ids for s in seqs]
    width = max(len(p) for p in prompts)
    pad = next(iter(engine.eos_ids))  # any valid id: padded positions are masked out
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        input_ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    adapters = [s.completion.adapter for s in seqs]
    engine.adapters.select([adapters[row] for row in distinct])
    firsts = torch.tensor(distinct, device=device)
    cache = growing_cache(model.config) if device.type == "cpu" else DynamicCache(config=model.config)
    logits = model(input_ids=input_ids[firsts], attention_mask=mask[firsts], position_ids=positions[firsts],
                   cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
    if len(distinct) < len(seqs):
        rows = torch.tensor(source, device=device)
        cache.batch_select_indices(rows)
        logits = logits[rows]
    engine.adapters.select(adapters)
    return cache, logits, mask, positions[:, -1] + 1


def decode_rows(engine: Engine, seqs: list[Sequence], aborted: Callable[[Sequence], bool]) -> int:
    device, model = engine.device, engine.model
    temperature = torch.tensor([s.completion.temperature for s in seqs], device=device)
    top_p = torch.tensor([s.completion.top_p for s in seqs], device=device)
    cache, logits, mask, next_position = prefill(engine, seqs)
    active = list(range(len(seqs)))  # seqs index of each batch row
    generated = 0
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
            generated += 1
            s.finish_reason = finish_reason_after(engine, s)
            if s.finish_reason is None and aborted(s):
                s.finish_reason, s.text = "abort", decode(engine, s.token_ids)
            if s.finish_reason is None:
                keep.append(row)
        if not keep:
            return generated
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


