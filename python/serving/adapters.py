"""LoRA adapters served on top of a base model, read from what peft's save_pretrained writes (the same
directory vLLM's /v1/load_lora_adapter reads): adapter_config.json and adapter_model.safetensors.

What an adapter computes, as peft does: every targeted nn.Linear gives
    y = W x + scaling * B (A x),    A [r, in], B [out, r], scaling = lora_alpha / r
(lora_alpha / sqrt(r) with use_rslora; rank_pattern and alpha_pattern pick r and alpha per module).
The base weights are never changed (no merging), so one base serves every adapter and the requests
that name none. The adapter's part is computed in float32 whatever the base's dtype, as peft does
for a bfloat16 base (the trainer's numbers); on this CPU that was also faster than bfloat16, whose
small matmuls cost more per call (README).

Layout: a targeted Linear is wrapped once in a LoraLinear that keeps every loaded adapter's matrices
stacked by slot (one slot per loaded adapter):
    A_all [S*R, in]    slot s holds A in rows s*R .. s*R+r-1, zeros below (R: largest rank loaded)
    B_all [out, S*R]   the same columns of scaling * B
A batch whose rows all use one adapter multiplies by that slot's A and B only (two small matmuls per
layer). A batch that mixes adapters multiplies by every slot and zeroes, per row, the rank-space
activations of the other slots (a one-hot block mask), so each row gets exactly its own adapter's
delta, at S times the (small) LoRA cost. Rows without an adapter have an all-zero mask row.

Thread safety: install and remove change the model; the caller holds the engine's lock, which the
scheduler holds while a batch computes.
"""
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

# Features of peft's LoraConfig that change what the adapter computes beyond A and B; served adapters
# must leave them off (the trainer's adapters do). Value: what "off" looks like.
UNSUPPORTED = {
    "use_dora": False, "fan_in_fan_out": False, "bias": "none", "lora_bias": False, "use_qalora": False,
    "modules_to_save": None, "layer_replication": None, "target_parameters": None,
    "trainable_token_indices": None, "alora_invocation_tokens": None, "monteclora_config": None,
    "use_bdlora": None, "arrow_config": None, "kasa_config": None,
}
WEIGHT_KEY = re.compile(r"base_model\.model\.(.+)\.lora_([AB])\.weight")


@dataclass(frozen=True)
class AdapterFiles:
    """An adapter as read from its directory, before it meets a base model."""

    path: str
    rank: int  # largest rank over its modules
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]]  # module name -> (A, B, scaling)


@dataclass
class Adapter:
    """One adapter installed on one base model."""

    name: str
    files: AdapterFiles
    number: int  # the server's count of adapter loads: two loads under one name differ here
    slot: int
    fingerprint: str
    loaded_at: float = field(default_factory=time.time)
    loaded: bool = True  # False once removed: requests bound to it fail instead of decoding without it


def pattern_value(patterns: dict, module: str, default):
    """peft's rank_pattern / alpha_pattern lookup: the first pattern that matches the end of the
    module's name, at a dot boundary."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return value
    return default


def read_adapter(path: str) -> AdapterFiles:
    """Reads and checks what can be checked without a base model; raises ValueError saying why not."""
    root = Path(path)
    if not (root / "adapter_config.json").is_file():
        raise ValueError(f"{path} has no adapter_config.json")
    if not (root / "adapter_model.safetensors").is_file():
        raise ValueError(f"{path} has no adapter_model.safetensors")
    try:
        config = json.loads((root / "adapter_config.json").read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"adapter_config.json is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise ValueError(f"only LoRA adapters are served, not peft_type {config.get('peft_type')!r}")
    for key, off in UNSUPPORTED.items():
        if config.get(key) not in (off, None, [], {}):
            raise ValueError(f"adapter_config.json sets {key}={config[key]!r}, which this server does not serve")
    alpha = config.get("lora_alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"lora_alpha must be a positive number, not {alpha!r}")

    try:
        tensors = load_file(root / "adapter_model.safetensors")
    except Exception as e:  # a truncated or foreign file: safetensors raises its own error types
        raise ValueError(f"adapter_model.safetensors does not load: {e}") from None
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        match = WEIGHT_KEY.fullmatch(key)
        if not match:
            raise ValueError(f"unexpected tensor {key}: only the A and B matrices of LoRA linear layers are served")
        pairs.setdefault(match[1], {})[match[2]] = tensor
    if not pairs:
        raise ValueError("adapter_model.safetensors holds no LoRA weights")

    modules = {}
    for module, ab in sorted(pairs.items()):
        a, b = ab.get("A"), ab.get("B")
        if a is None or b is None:
            raise ValueError(f"{module} has lora_{'A' if a is None else 'B'} missing")
        if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[1] or a.shape[0] == 0:
            raise ValueError(f"{module}: lora_A {list(a.shape)} and lora_B {list(b.shape)} are not [r, in] and [out, r]")
        if not (a.is_floating_point() and b.is_floating_point()):
            raise ValueError(f"{module}: LoRA weights must be floating point")
        r = a.shape[0]
        module_alpha = pattern_value(config.get("alpha_pattern") or {}, module, alpha)
        scaling = module_alpha / math.sqrt(r) if config.get("use_rslora") else module_alpha / r
        modules[module] = (a, b, float(scaling))
    return AdapterFiles(path=str(path), rank=max(a.shape[0] for a, _, _ in modules.values()), modules=modules)


class Selection:
    """Which adapter each row of the batch being computed uses. The scheduler sets it before a model
    call; every LoraLinear of the model reads it."""

    def __init__(self):
        self.slot: int | None = None  # every row uses this slot
        self.mask: torch.Tensor | None = None  # rows differ: [rows, 1, S*R], ones on each row's slot block


class LoraLinear(torch.nn.Module):
    """A base nn.Linear plus the loaded adapters' deltas for it (see the module docstring)."""

    def __init__(self, base: torch.nn.Linear, selection: Selection):
        super().__init__()
        self.base = base
        self.selection = selection
        self.a_all: torch.Tensor | None = None  # [S*R, in]
        self.b_all: torch.Tensor | None = None  # [out, S*R]
        self.by_slot: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # slot -> (A [r, in], scaling * B [out, r])

    @property
    def weight(self) -> torch.Tensor:  # code that reads the base layer's weight keeps working
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        sel = self.selection
        # y is this call's own output, so the delta is added in place (one allocation less per layer).
        if sel.mask is not None:
            if self.a_all is not None:
                y += F.linear(F.linear(x.float(), self.a_all) * sel.mask, self.b_all)
        elif sel.slot is not None:
            ab = self.by_slot.get(sel.slot)
            if ab is not None:
                y += F.linear(F.linear(x.float(), ab[0]), ab[1])
        return y

    def restack(self, weights: dict[int, tuple[torch.Tensor, torch.Tensor]], slots: int, rank: int) -> None:
        """weights: slot -> (A [r, in], scaling * B [out, r]), float32 on the base's device."""
        self.by_slot = {}
        if not weights:
            self.a_all = self.b_all = None
            return
        w = self.base.weight
        self.a_all = w.new_zeros((slots * rank, self.base.in_features), dtype=torch.float32)
        self.b_all = w.new_zeros((self.base.out_features, slots * rank), dtype=torch.float32)
        for slot, (a, b) in weights.items():
            ranks = slice(slot * rank, slot * rank + a.shape[0])
            self.a_all[ranks], self.b_all[:, ranks] = a, b
            self.by_slot[slot] = (self.a_all[ranks], b)  # B's columns are not contiguous in b_all: its own copy


class AdapterSet:
    """The adapters installed on one model, at most max_loras of them."""

    def __init__(self, model: torch.nn.Module, max_loras: int, probe: Callable[[], bool]):
        self.model, self.max_loras, self.probe = model, max_loras, probe
        self.by_name: dict[str, Adapter] = {}
        self.selection = Selection()
        self.layers: dict[str, LoraLinear] = {}  # wrapped modules by name; never unwrapped
        self.row_slots: list[int | None] = []
        self.layout = (0, 0)  # (S, R) of the stacks

    def get(self, name: str) -> Adapter | None:
        return self.by_name.get(name)

    def __len__(self) -> int:
        return len(self.by_name)

    def base_linear(self, module: str) -> torch.nn.Linear:
        try:
            layer = self.model.get_submodule(module)
        except AttributeError:
            raise ValueError(f"the base model has no module {module}") from None
        layer = layer.base if isinstance(layer, LoraLinear) else layer
        if not isinstance(layer, torch.nn.Linear):
            raise ValueError(f"{module} is a {type(layer).__name__}; LoRA is served on linear layers only")
        return layer

    def install(self, name: str, files: AdapterFiles, number: int, fingerprint: str) -> Adapter:
        """Adds an adapter and checks it on a one-token forward pass; raises ValueError (and leaves
        the set as it was) if it does not fit this base or produces non-finite logits."""
        if name in self.by_name:
            raise ValueError(f"an adapter named {name} is already loaded")
        if len(self.by_name) >= self.max_loras:
            raise ValueError(f"{self.max_loras} adapters are loaded, the limit (--max-loras)")
        for module, (a, b, _) in files.modules.items():
            base = self.base_linear(module)
            if a.shape[1] != base.in_features or b.shape[0] != base.out_features:
                raise ValueError(f"{module}: adapter maps {a.shape[1]} -> {b.shape[0]} features, the base "
                                 f"layer {base.in_features} -> {base.out_features}")
        for module in files.modules:
            if module not in self.layers:
                parent, _, attr = module.rpartition(".")
                layer = LoraLinear(self.base_linear(module), self.selection)
                setattr(self.model.get_submodule(parent), attr, layer)
                self.layers[module] = layer
        used = {a.slot for a in self.by_name.values()}
        slot = min(s for s in range(self.max_loras) if s not in used)
        adapter = Adapter(name=name, files=files, number=number, slot=slot, fingerprint=fingerprint)
        self.by_name[name] = adapter
        self.restack()
        try:
            self.select([adapter])
            finite = self.probe()
        except Exception:
            self.remove(name)
            raise
        finally:
            self.select([])
        if not finite:
            self.remove(name)
            raise ValueError(f"adapter {files.path} produces non-finite logits on this base")
        return adapter

    def remove(self, name: str) -> Adapter:
        adapter = self.by_name.pop(name)
        adapter.loaded = False
        self.restack()
        return adapter

    def restack(self) -> None:
        adapters = list(self.by_name.values())
        slots = max((a.slot for a in adapters), default=-1) + 1
        rank = max((a.files.rank for a in adapters), default=0)
        for module, layer in self.layers.items():
            w = layer.base.weight
            weights = {}
            for a in adapters:
                if module in a.files.modules:
                    lora_a, lora_b, scaling = a.files.modules[module]
                    b = lora_b.to(w.device, torch.float32) * scaling
                    weights[a.slot] = (lora_a.to(w.device, torch.float32), b)
            layer.restack(weights, slots, rank)
        self.layout = (slots, rank)

    def select(self, row_adapters: list["Adapter | None"]) -> None:
        """Sets which adapter each row of the next model calls uses ([] or all None: none)."""
        self.row_slots = [a.slot if a is not None else None for a in row_adapters]
        self.apply_selection()

    def keep_rows(self, rows: list[int]) -> None:
        """The batch dropped rows: keep the selection of the rows that remain, in this order."""
        self.row_slots = [self.row_slots[r] for r in rows]
        self.apply_selection()

    def apply_selection(self) -> None:
        sel, distinct = self.selection, set(self.row_slots)
        sel.slot, sel.mask = None, None
        if distinct == {None} or not distinct:
            return
        if len(distinct) == 1:
            sel.slot = self.row_slots[0]
            return
        slots, rank = self.layout
        mask = torch.zeros((len(self.row_slots), slots * rank))
        for row, slot in enumerate(self.row_slots):
            if slot is not None:
                mask[row, slot * rank:(slot + 1) * rank] = 1
        w = next(self.model.parameters())
        sel.mask = mask.to(w.device)[:, None, :]
