"""
The trainer on several devices (docs/trainer-contract.md, "More than one device"). What differs from
one process lives here: the process group, how the model is wrapped, how weights and optimizer state
are loaded and gathered for saving. The loss, the batching and the optimizer step stay in trainer.py.

    python python/torchrun.py --standalone --nproc_per_node=N python/trainer.py JOB.json

Every rank reads the whole job; rank r trains on a fixed slice of each mini-batch (trainer.py
`rank_schedule`). The modes:
  - full weights: FSDP2. `fully_shard` on each decoder layer, then on the model; parameters,
    gradients and AdamW moments are sharded in fp32. On CUDA the layers compute in bf16
    (`MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)`); on CPU everything is fp32, as in
    one process. A separate KL reference is sharded the same way, without gradients.
  - LoRA: the base is frozen and replicated on every rank, the adapter under DDP. With
    `lora_fsdp` the model (bf16 base and fp32 adapter) is sharded with FSDP2 instead, for a base
    that does not fit one device.
Gradients are reduced by SUM, never AVG: each rank divides its summed token loss by the mini-batch's
global response-token count, so the sum over ranks is the one-process gradient (and gloo's AVG with
FSDP2 on CPU has a silent-correctness bug, pytorch#162338).
"""
import ctypes
import os
import signal
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict, get_optimizer_state_dict,
                                                     set_model_state_dict, set_optimizer_state_dict)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

# Whole tensors on rank 0, in CPU memory: what a checkpoint file holds.
GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
# Whole tensors read by rank 0 only and sent to the others, each keeping its shard.
SCATTER = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    local_size: int
    device: torch.device
    owns_group: bool  # this process initialised the process group, so it also destroys it

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.sharded:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks, in float64 so that counts and sums of many tokens stay exact."""
        return self._reduce(values, dist.ReduceOp.SUM)

    def max(self, value: float) -> float:
        return self._reduce([value], dist.ReduceOp.MAX)[0]

    def _reduce(self, values: list[float], op) -> list[float]:
        if not self.sharded:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=op)
        return t.tolist()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()


def init_world() -> World:
    """One process (no torchrun: the device of today's trainer), or this rank of a torchrun job.
    nccl with one GPU per rank (LOCAL_RANK) on CUDA, gloo on CPU."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if size == 1:
        return World(0, 1, 0, 1, torch.device("cuda" if cuda else "cpu"), owns_group=False)
    local_rank = int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
        die_with_parent()
    return World(dist.get_rank(), dist.get_world_size(), local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", size)),
                 device, owns_group=owns)


def die_with_parent() -> None:
    """torchrun starts each rank in a session of its own, outside the launcher's process group: the
    launcher's SIGTERM reaches torchrun, which stops its ranks, but its SIGKILL 10 s later would leave
    them running. PR_SET_PDEATHSIG (Linux) has the kernel kill this rank when torchrun dies."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # torchrun died before the kernel was told
        os._exit(3)


# --------------------------------------------------------------------------------------------------
# Wrapping


def decoder_layers(model) -> list[torch.nn.Module]:
    """The repeated blocks, by the class names Hugging Face models list as never to be split."""
    names = set(getattr(model, "_no_split_modules", None) or getattr(model.get_base_model(), "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    assert layers, f"{type(model).__name__} names no decoder layer class to shard (_no_split_modules)"
    return layers


def shard(model, world: World, mixed_bf16: bool):
    """FSDP2: each decoder layer is one all-gather unit, the rest (embeddings, final norm, a tied
    output layer) the root's. Gradients are summed, not averaged (see the module docstring)."""
    mesh = init_device_mesh(world.device.type, (world.size,))
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if mixed_bf16 else MixedPrecisionPolicy()
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.set_gradient_divide_factor(1.0)
            m.set_force_sum_reduction_for_comms(True)  # SUM as the collective op, with no pre/post scaling
    return model


def load_sharded(path: str, world: World, mixed_bf16: bool, trainable: bool, checkpointing: bool, **options):
    """A full-weight model in fp32, sharded. Rank 0 reads the checkpoint; the other ranks build the
    model on the meta device and receive their shards from it, so the host holds one full copy
    however many ranks there are. Non-persistent buffers (rotary frequencies) are not in a state
    dict: they are sent from rank 0 as well."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    if world.main:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
        full = model.state_dict()
    else:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path), dtype=torch.float32, **options)
        full = {}
        try:  # the probe stops at the generation config's end tokens: every rank must stop alike
            model.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:
            pass
    model.requires_grad_(trainable)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    shard(model, world, mixed_bf16)
    if not world.main:
        model.to_empty(device=world.device)
    set_model_state_dict(model, full, options=SCATTER)
    del full
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
    return model


def reshard(model) -> None:
    """After forward passes without a backward (log-probs, the probe) FSDP2 leaves the root's
    parameters gathered; the optimizer and the state dicts must see the sharded ones."""
    for m in model.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


def replicate_adapter(model, world: World):
    """LoRA under DDP: every rank holds the frozen base; DDP reduces only the adapter's gradients
    (the parameters that require them), summed by the hook below."""
    ddp = DistributedDataParallel(model, device_ids=[world.device.index] if world.device.type == "cuda" else None,
                                  broadcast_buffers=False)
    ddp.register_comm_hook(None, _sum_hook)
    return ddp


def _sum_hook(_state, bucket):
    return dist.all_reduce(bucket.buffer(), op=dist.ReduceOp.SUM, async_op=True).get_future().then(lambda f: f.value()[0])


def accumulating(trained, last: bool):
    """DDP's all-reduce runs on the last micro-batch of a mini-batch only; FSDP2 reduce-scatters every
    micro-batch into the sharded gradients (no unsharded copy held between micro-batches)."""
    return trained.no_sync() if isinstance(trained, DistributedDataParallel) and not last else nullcontext()


def clip_grad_norm(params, max_norm: float) -> float:
    """The global L2 norm before clipping: over DTensor shards FSDP2's norm is a partial that
    `full_tensor` sums across ranks; DDP's gradients are already whole on every rank."""
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return (norm.full_tensor() if isinstance(norm, DTensor) else norm).item()


# --------------------------------------------------------------------------------------------------
# Saving and resuming


def gathered_weights(model) -> dict[str, torch.Tensor]:
    """The whole state dict on rank 0 (empty elsewhere), without the aliases of tied weights (a tied
    output layer is saved once, as by save_pretrained in one process)."""
    full = get_model_state_dict(model, options=GATHER)
    params = {name for name, _ in model.named_parameters()}
    every = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    return {k: v for k, v in full.items() if k in params or k not in every}


def gathered_moments(model, optimizer) -> dict[str, dict[str, torch.Tensor]]:
    """AdamW state (step, exp_avg, exp_avg_sq) by parameter name on rank 0, empty elsewhere."""
    return get_optimizer_state_dict(model, optimizer, options=GATHER).get("state", {})


def scatter_moments(path: str, model, optimizer, world: World, names: list[str], step: int) -> None:
    """Loads optimizer.safetensors (whole tensors by name, trainer.py OPTIMIZER_FORMAT) into a sharded
    optimizer: rank 0 reads it, each rank keeps its shard. The file holds whole tensors, so any number
    of ranks can resume it."""
    state = {}
    if world.main:
        tensors = load_file(path)
        state = {"state": {n: {"step": torch.tensor(float(step)), "exp_avg": tensors[f"exp_avg/{n}"],
                               "exp_avg_sq": tensors[f"exp_avg_sq/{n}"]} for n in names},
                 "param_groups": [{**{k: v for k, v in optimizer.param_groups[0].items() if k != "params"}, "params": names}]}
    set_optimizer_state_dict(model, optimizer, state, options=SCATTER)


def stored_names(path: str) -> set[str]:
    with safe_open(path, "pt") as f:
        return {k.split("/", 1)[1] for k in f.keys()}

