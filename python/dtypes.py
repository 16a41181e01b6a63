"""
The one rule for the dtype a model computes in, shared by the model server (`--dtype auto`), the
trainer (`dtype`: the frozen LoRA base, and the compute dtype of full weights) and the benches.

    auto -> bfloat16 on CUDA, and on a CPU that multiplies bfloat16 in hardware; float32 elsewhere

A CPU without bf16 instructions only emulates it: on the 2-core AVX2-only AMD EPYC VM a LoRA update
with a bf16 base ran at about 2 tokens/s, while on an AVX-512 BF16 VM bf16 decodes about twice as
fast as float32 (docs/infra-notes.md, "CPUs differ between VMs"). What counts is what torch will
run, not only what the silicon has: ATEN_CPU_CAPABILITY=avx2 or ONEDNN_MAX_CPU_ISA=AVX2 make an
AVX-512 BF16 machine compute as an AVX2-only one, so the rule reads torch's capability and oneDNN's
cap as well as /proc/cpuinfo.

    python python/dtypes.py     prints this machine's CPU as the rule sees it, and what auto picks
"""
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN's ISA names below avx512_core_bf16 (dnnl_cpu_isa_t): with its cap at one of these, oneDNN
# emulates bf16 whatever the CPU has. Any other value (ALL, DEFAULT, a newer ISA) does not hold it back.
ONEDNN_ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


@dataclass(frozen=True)
class Cpu:
    model: str  # "model name" of /proc/cpuinfo; "" where it has none (Arm)
    avx512_bf16: bool
    amx_bf16: bool
    arm_bf16: bool  # the BF16 extension of Armv8.6 ("Features: ... bf16")
    torch_capability: str  # torch.backends.cpu.get_cpu_capability(): "AVX512", "AVX2", "DEFAULT", ...
    onednn_max_cpu_isa: str  # ONEDNN_MAX_CPU_ISA (or the older DNNL_MAX_CPU_ISA), upper case; "" when unset
    mkldnn: bool  # torch was built with oneDNN, which is what runs bf16 matmuls on CPU

    @property
    def fast_bf16(self) -> bool:
        if not self.mkldnn:
            return False
        if self.avx512_bf16 or self.amx_bf16:
            # torch's own kernels must run at AVX-512 too, and oneDNN must be allowed bf16 instructions.
            return self.torch_capability.startswith("AVX512") and self.onednn_max_cpu_isa not in ONEDNN_ISAS_WITHOUT_BF16
        return self.arm_bf16


def read_cpu(cpuinfo: str | None = None, capability: str | None = None, environ=None) -> Cpu:
    """This machine's CPU, or the one described by the arguments (tests)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no flags to read, so bf16 is never taken for fast
            cpuinfo = ""
    environ = os.environ if environ is None else environ
    model, flags, features = "", set(), set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags":
            flags.update(value.split())
        elif key == "Features":
            features.update(value.split())
    isa = environ.get("ONEDNN_MAX_CPU_ISA") or environ.get("DNNL_MAX_CPU_ISA") or ""
    return Cpu(model=model, avx512_bf16="avx512_bf16" in flags, amx_bf16="amx_bf16" in flags, arm_bf16="bf16" in features,
               torch_capability=capability if capability is not None else torch.backends.cpu.get_cpu_capability(),
               onednn_max_cpu_isa=isa.strip().upper(), mkldnn=torch.backends.mkldnn.is_available())


def resolve(name: str, device: torch.device | str, cpu: Cpu | None = None) -> torch.dtype:
    """The dtype `name` means on `device`: itself, or for "auto" the rule above."""
    if name == "auto":
        if torch.device(device).type == "cuda":
            return torch.bfloat16
        return torch.bfloat16 if (cpu or read_cpu()).fast_bf16 else torch.float32
    if name not in NAMES:
        raise ValueError(f"unknown dtype {name!r}; use auto, {', '.join(NAMES)}")
    return NAMES[name]


def name_of(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


if __name__ == "__main__":
    cpu = read_cpu()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    json.dump({**asdict(cpu), "fast_bf16": cpu.fast_bf16, "device": device, "auto": name_of(resolve("auto", device, cpu))},
              sys.stdout)
    print()
