"""Attention for decode steps: one query token per row, grouped-query heads, on CPU.

transformers' sdpa path sends a decode step to torch's scaled_dot_product_attention, whose CPU
kernels are built for long query blocks: with one query token it took 0.7 ms per layer (rows of
different lengths: a mask, GQA packed into the query) to 10-20 ms (rows of one prompt: no mask,
enable_gqa) for Qwen2.5-0.5B at 32 rows x 440 tokens, where two batched matmuls over the key/value
heads take 0.4 ms. At a few hundred tokens that made attention a third of each decode step
(measured, README). Prefill (many query tokens) keeps the sdpa path.
"""
import logging

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_grouped_decode"
log = logging.getLogger("model_server")


def grouped_decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0,
                             scaling: float | None = None, **kwargs):
    """query [B, H, 1, D], key/value [B, KV, L, D] (H a multiple of KV; any float dtype, any strides),
    attention_mask None, or [B, 1, 1, L] boolean (True: attend) or additive. Returns ([B, 1, H, D],
    None) in the query's dtype, as sdpa does.

    1. the H query heads fold into KV groups of H / KV rows that share one key/value head
    2. scores = q k^T * scaling in float32, masked, softmax over L
    3. output = probabilities v, unfolded back to H heads"""
    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    plain = (q_len == 1 and not dropout and heads % kv_heads == 0 and value.shape[-1] == dim
             and kwargs.get("softcap") is None and kwargs.get("position_bias") is None and kwargs.get("s_aux") is None
             and (attention_mask is None or attention_mask.shape[1] == 1))
    if not plain:  # the server's cache hands out float32 keys and values (serving/kv_cache.py)
        key, value = key.to(query.dtype), value.to(query.dtype)
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    scale = scaling if scaling is not None else dim ** -0.5
    q = query.reshape(batch, kv_heads, heads // kv_heads, dim).to(key.dtype)
    scores = torch.matmul(q, key.transpose(-1, -2)).float() * scale  # [B, KV, H / KV, L]
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, float("-inf"))
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1).to(value.dtype)
    out = torch.matmul(probs, value)  # [B, KV, H / KV, D]
    return out.reshape(batch, 1, heads, dim).to(query.dtype), None


AttentionInterface.register(NAME, grouped_decode_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the masks sdpa gets: prefill is unchanged
