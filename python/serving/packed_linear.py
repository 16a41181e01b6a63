"""float32 linear layers on CPU with their weights packed once for oneDNN's matmul.

torch computes a float32 nn.Linear on CPU with MKL's sgemm, which re-packs the weight matrix into its
own blocked layout on every call. A decode step multiplies a few rows (the batch) by every weight of
the model, so that packing is a large part of the step: at 16 rows, Qwen2.5-0.5B's output layer
(151,936 x 896) took 165-190 ms of CPU per call through nn.Linear and 92-99 ms with the weight
packed once (oneDNN, AVX2, one thread), the MLP's 896 x 4864 4.4 ms against 3.4 ms (README,
"Generation benchmark"). The packed weight replaces the plain one (the same bytes, so the server's
memory does not grow); the arithmetic is the same float32 sum of products in another order (outputs
differ in the last bits, as they do between batch shapes).

Only float32 CPU models: bfloat16 already goes through oneDNN, and CUDA has its own kernels.
"""
import torch

# The packed layout is chosen for a number of rows; any number works with it. 16 is the code stage's
# concurrency (batch x nCode of configs/local.json); 16 and 32 measured alike at 8-32 rows.
ROWS_HINT = 16


class PackedLinear(torch.nn.Linear):
    """An nn.Linear whose weight lives in `packed` (oneDNN's layout); `weight` is left as an empty
    tensor of the same dtype and device, for code that asks a layer where it lives (adapters.py),
    and in_features / out_features keep the shape."""

    packed: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def can_pack(model: torch.nn.Module) -> bool:
    p = next(model.parameters())
    return p.device.type == "cpu" and p.dtype == torch.float32 and torch.backends.mkldnn.is_available()


@torch.no_grad()
def pack_linears(model: torch.nn.Module) -> int:
    """Packs every plain float32 nn.Linear of a CPU model in place; returns how many. A weight shared
    with another module (tied embeddings) stays as it is, since the other module reads it."""
    shared = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        shared[id(p)] = shared.get(id(p), 0) + 1
    packed = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or shared[id(module.weight)] > 1:
            continue
        w = module.weight
        if w.device.type != "cpu" or w.dtype != torch.float32:
            continue
        module.packed = torch.ops.mkldnn._reorder_linear_weight(w.detach().contiguous(), ROWS_HINT)
        module.weight = torch.nn.Parameter(w.new_empty((0,)), requires_grad=False)
        module.__class__ = PackedLinear
        packed += 1
    return packed
