"""
The on-policy probe (docs/trainer-contract.md, "Proof that the served weights are the trained ones").

An inference server that answers 200 to a reload may still serve the old weights (vLLM has shipped
such reloads). So every checkpoint the trainer writes carries `probe.json`: the greedy completion of
one fixed chat prompt and the log-probability of each of its tokens, computed from the weights just
saved, and the same for the weights the update started from. After publishing, the pipeline asks
each endpoint for the same greedy completion with `logprobs` and compares
(activities/llm/probe.ts); `previous` tells it whether this update moved the probe far enough for
the comparison to tell the two apart.

The prompt goes through the chat template exactly as the servers render it (template text, then
tokenised without extra special tokens), and the log-probabilities are those of the raw logits in
float32, which is what vLLM returns by default and the embedded server returns always.
"""
import torch

MESSAGES = [
    {"role": "system", "content": "You are a careful Python programmer."},
    {"role": "user", "content": "Write a Python function `second_largest(xs)` that returns the second largest "
                                "distinct value of a list of integers, or None when there is none."},
]
MAX_TOKENS = 16


def prompt_ids(tokenizer) -> list[int]:
    text = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def stop_ids(model, tokenizer) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


@torch.no_grad()
def greedy(model, tokenizer, device, autocast) -> dict:
    """MAX_TOKENS greedy tokens (fewer when an end token comes first, which is kept, as servers
    return it) and their log-probabilities, all read from one forward pass over the prompt and the
    answer, without a cache (no cache-dependent numerics). The answer is found first with a cache
    (one prompt pass, then one token per step); where that pass's argmax and the full pass's differ (a
    near-tie that the two numerics break apart), the answer is recomputed token by token without a
    cache, as the full pass would choose. Recomputing every step always took 16 forwards of the prompt:
    seconds per update, twice per update, on a CPU."""
    was_training = model.training
    model.eval()
    ids = prompt_ids(tokenizer)
    stops = stop_ids(model, tokenizer)
    tokens = cached_greedy(model, ids, stops, device, autocast)
    logprobs = full_pass(model, ids, tokens, device, autocast)
    if any(int(lp.argmax()) != t for lp, t in zip(logprobs, tokens)):
        tokens = []
        for _ in range(MAX_TOKENS):
            tokens.append(int(full_pass(model, ids, tokens, device, autocast, last=True)[-1].argmax()))
            if tokens[-1] in stops:
                break
        logprobs = full_pass(model, ids, tokens, device, autocast)
    model.train(was_training)
    chosen = [float(lp[t]) for lp, t in zip(logprobs, tokens)]
    return {"tokenIds": tokens, "tokens": [tokenizer.decode([t]) for t in tokens], "logprobs": chosen}


def cached_greedy(model, ids: list[int], stops: set[int], device, autocast) -> list[int]:
    tokens, cache, step = [], None, ids
    for _ in range(MAX_TOKENS):
        with autocast():
            out = model(input_ids=torch.tensor([step], device=device), cache=cache, use_cache=True, logits_to_keep=1)
        cache = out.cache
        tokens.append(int(out.logits[0, -1].argmax()))
        if tokens[-1] in stops:
            break
        step = tokens[-1:]
    return tokens


def full_pass(model, ids: list[int], tokens: list[int], device, autocast, last: bool = False) -> torch.Tensor:
    """float32 log-softmax of the logits that predict each token of `tokens` (with last, the position
    after them only), from one forward pass over ids + tokens without a cache."""
    keep = 1 if last else len(tokens)
    with autocast():
        logits = model(input_ids=torch.tensor([ids + tokens], device=device), use_cache=False,
                       logits_to_keep=keep + (0 if last else 1)).logits[0]
    logits = logits[-1:] if last else logits[:-1]
    return torch.log_softmax(logits.float(), dim=-1)


def document(current: dict, previous: dict | None, dtype: str) -> dict:
    """probe.json: what the endpoint must reproduce (`current`), what the weights before this update
    gave (`previous`, absent when unknown), and the dtype the trainer computed both in."""
    return {"format": "code-a1-probe-v1", "messages": MESSAGES, "maxTokens": MAX_TOKENS, "dtype": dtype,
            "current": current, **({"previous": previous} if previous is not None else {})}
