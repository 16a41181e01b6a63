"""A KV cache that appends in place. transformers' DynamicCache concatenates every layer's keys and
values with the new token's at each decode step, which copies the whole cache per step: 12% of a
step at 32 rows x 540 tokens (Qwen2.5-0.5B, CPU), and more the longer the answers (measured, README).
Here each layer writes into spare capacity, GROWTH more positions whenever it is full (a copy of the
cache every GROWTH steps instead of every step), and hands attention a view.

The buffers are float32 whatever the model's dtype: torch's bfloat16 batched matmul copies any input
that is not densely packed (a view of the first L of `capacity` positions is not), which would cost
what the concatenation did; float32 reads the views in place, and the attention of a decode step
(serving/attention.py) computes in float32 anyway. Keys are stored transposed, [B, heads, D, capacity],
so that q k^T reads them row by row; values [B, heads, capacity, D]. The price: a float32 cache takes
twice the memory of a bfloat16 one (Qwen2.5-0.5B: 24 KB per token and row)."""
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

GROWTH = 512  # positions added when a layer's buffer is full: at most this many unused per row


class GrowingLayer(DynamicLayer):
    """keys and values are float32 [B, heads, length, D] views of the first `length` positions of
    buffers with room for more: key_buffer [B, heads, D, capacity], value_buffer [B, heads, capacity, D]."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self.length = 0
        self.key_buffer = self.value_buffer = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.length, self.length + key_states.shape[-2]
        if self.value_buffer is None or end > self.value_buffer.shape[-2]:
            self.grow(key_states, value_states, capacity=end + GROWTH)
        self.key_buffer[..., start:end] = key_states.transpose(-1, -2)
        self.value_buffer[:, :, start:end] = value_states
        self.length = end
        self.set_views()
        return self.keys, self.values

    def grow(self, key_states: torch.Tensor, value_states: torch.Tensor, capacity: int) -> None:
        batch, heads, _, dim = key_states.shape
        keys = key_states.new_empty((batch, heads, dim, capacity), dtype=torch.float32)
        values = value_states.new_empty((batch, heads, capacity, value_states.shape[-1]), dtype=torch.float32)
        if self.value_buffer is not None:
            keys[..., :self.length] = self.key_buffer[..., :self.length]
            values[:, :, :self.length] = self.value_buffer[:, :, :self.length]
        self.key_buffer, self.value_buffer = keys, values

    def set_views(self) -> None:
        self.keys = self.key_buffer[..., :self.length].transpose(-1, -2)
        self.values = self.value_buffer[:, :, :self.length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized and self.value_buffer is not None:
            self.key_buffer, self.value_buffer = self.key_buffer[indices], self.value_buffer[indices]
            self.set_views()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("the server selects rows with batch_select_indices")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("the server never crops its cache")


def growing_cache(config) -> DynamicCache:
    """A DynamicCache for this model whose full-attention layers append in place (sliding-window and
    other special layers keep transformers' own)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def can_assemble(config) -> bool:
    """Whether every layer of this model's cache is a growing one, which left_padded_cache can build
    from rows computed apart (a sliding-window layer keeps only its window: it cannot)."""
    return all(type(layer) is GrowingLayer for layer in growing_cache(config).layers)


def left_padded_cache(config, rows: list[list[tuple[torch.Tensor, torch.Tensor]]], width: int) -> DynamicCache:
    """A growing cache of len(rows) rows from keys and values computed row by row: rows[r][layer] is
    (keys, values) [1, KV heads, L_r, D], placed in the last L_r of `width` positions. The positions
    before are zeros, which the attention mask hides (as it hides a padded batch's pad tokens)."""
    cache = growing_cache(config)
    for index, layer in enumerate(cache.layers):
        keys, values = rows[0][index]
        layer.lazy_initialization(keys, values)
        layer.length = width
        shape = (len(rows), keys.shape[1], width + GROWTH)
        layer.key_buffer = keys.new_zeros((*shape[:2], keys.shape[-1], shape[2]), dtype=torch.float32)
        layer.value_buffer = values.new_zeros((*shape, values.shape[-1]), dtype=torch.float32)
        for r, row in enumerate(rows):
            keys, values = row[index]
            start = width - keys.shape[-2]
            layer.key_buffer[r, :, :, start:width] = keys[0].transpose(-1, -2)
            layer.value_buffer[r, :, start:width] = values[0]
        layer.set_views()
    return cache
