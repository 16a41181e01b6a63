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
    return it) and their log-probabilities. Recomputes the whole sequence each step: 16 forwards of
    a short prompt cost seconds, and no cache means no cache-dependent numerics."""
    was_training = model.training
    model.eval()
    ids = prompt_ids(tokenizer)
    stops = stop_ids(model, tokenizer)
    tokens, logprobs = [], []
    for _ in range(MAX_TOKENS):
        x = torch.tensor([ids + tokens], device=device)
        with autocast():
            logits = model(input_ids=x, use_cache=False).logits[0, -1]
        lp = torch.log_softmax(logits.float(), dim=-1)
        t = int(lp.argmax())
        tokens.append(t)
        logprobs.append(float(lp[t]))
        if t in stops:
            break
    model.train(was_training)
    return {"tokenIds": tokens, "tokens": [tokenizer.decode([t]) for t in tokens], "logprobs": logprobs}


def document(current: dict, previous: dict | None, dtype: str) -> dict:
    """probe.json: what the endpoint must reproduce (`current`), what the weights before this update
    gave (`previous`, absent when unknown), and the dtype the trainer computed both in."""
    return {"format": "code-a1-probe-v1", "messages": MESSAGES, "maxTokens": MAX_TOKENS, "dtype": dtype,
            "current": current, **({"previous": previous} if previous is not None else {})}
