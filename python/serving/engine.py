"""Base checkpoints: loading a checkpoint directory in the dtype python/dtypes.py picks, and checking it is usable."""
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import dtypes

from . import attention
from .adapters import AdapterSet
from .packed_linear import can_pack, pack_linears

log = logging.getLogger("model_server")

# Versions restart at 0 with the process; this tells one process's v1 from the next one's.
SERVER_INSTANCE = secrets.token_hex(4)


@dataclass
class Engine:
    """One loaded base checkpoint and the LoRA adapters on it. The base weights never change after
    loading (a reload builds a new Engine and swaps it); adapters come and go under `lock`, which the
    scheduler holds while the model computes a batch."""

    model: torch.nn.Module
    tokenizer: object
    path: str
    version: int
    device: torch.device
    eos_ids: frozenset[int]
    max_model_len: int
    loaded_at: float
    adapters: AdapterSet
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)  # fast tokenizers are not re-entrant

    @property
    def fingerprint(self) -> str:
        return f"ckpt-{SERVER_INSTANCE}-v{self.version}"

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype


@torch.inference_mode()
def logits_are_finite(model: torch.nn.Module, token_id: int, device: torch.device) -> bool:
    """One forward pass over one token: catches weights that load but are garbage (NaN/inf after a
    diverged update)."""
    logits = model(input_ids=torch.tensor([[token_id]], device=device), use_cache=False).logits
    return bool(torch.isfinite(logits).all())


def load_engine(path: str, version: int, dtype_name: str, max_loras: int, fallback_tokenizer=None) -> Engine:
    """Loads a checkpoint and checks it is usable before anyone is served from it.

    A directory without tokenizer files (a trainer that saves weights only) reuses fallback_tokenizer:
    policy updates do not change the vocabulary."""
    started = time.time()
    ckpt = Path(path)
    if not (ckpt / "config.json").is_file():
        raise ValueError(f"{path} is not a checkpoint directory (no config.json)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtypes.resolve(dtype_name, device)
    # On CPU, decode steps take the grouped attention (serving/attention.py); CUDA's sdpa kernels are fine.
    attn = {"attn_implementation": attention.NAME} if device.type == "cpu" else {}
    model, info = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, output_loading_info=True, **attn)
    # transformers fills missing weights with random values and only warns: refuse instead.
    problems = {k: sorted(v)[:5] for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        raise ValueError(f"checkpoint weights do not match the model: {problems or info['error_msgs']}")
    model.to(device).eval()
    if can_pack(model):  # float32 on CPU: decode steps spend most of their time in these matmuls
        pack_linears(model)

    has_tokenizer = (ckpt / "tokenizer.json").is_file() or (ckpt / "tokenizer_config.json").is_file()
    if has_tokenizer:
        tokenizer = AutoTokenizer.from_pretrained(path)
    elif fallback_tokenizer is not None:
        tokenizer = fallback_tokenizer
    else:
        raise ValueError(f"{path} has no tokenizer files")
    if not tokenizer.chat_template:
        raise ValueError(f"the tokenizer of {path} has no chat template")

    gen_eos = model.generation_config.eos_token_id
    eos_ids = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(tokenizer.eos_token_id)
    assert eos_ids, "no end-of-sequence token: generation would only ever stop at max_tokens"
    probe_id = min(eos_ids)
    if not logits_are_finite(model, probe_id, device):
        raise ValueError(f"checkpoint {path} produces non-finite logits")

    engine = Engine(
        model=model,
        tokenizer=tokenizer,
        path=str(path),
        version=version,
        device=device,
        eos_ids=frozenset(eos_ids),
        max_model_len=int(model.config.max_position_embeddings),
        loaded_at=time.time(),
        adapters=AdapterSet(model, max_loras, probe=lambda: logits_are_finite(model, probe_id, device)),
    )
    log.info("loaded %s (v%d) on %s/%s in %.1fs", path, version, device, dtype, time.time() - started)
    return engine
