"""The dtype rule (python/dtypes.py) shared by the model server, the trainer and the benches."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR))

import dtypes  # noqa: E402

AVX512_BF16 = "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16\n"
AMX = "model name\t: Intel(R) Xeon(R) Platinum 8488C\nflags\t\t: fpu avx2 avx512f avx512bw amx_bf16 amx_tile\n"
AVX512_ONLY = "flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni\n"
AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\nprocessor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def auto(cpuinfo: str, capability: str = "AVX512", device: str = "cpu", **environ: str) -> torch.dtype:
    return dtypes.resolve("auto", device, dtypes.read_cpu(cpuinfo, capability, environ))


def test_a_cpu_with_avx512_bf16_computes_in_bfloat16():
    assert auto(AVX512_BF16) == torch.bfloat16


def test_a_cpu_with_amx_computes_in_bfloat16():
    assert auto(AMX) == torch.bfloat16


def test_an_avx512_cpu_without_bf16_instructions_computes_in_float32():
    assert auto(AVX512_ONLY) == torch.float32


def test_an_avx2_only_cpu_computes_in_float32():
    assert auto(AVX2_ONLY, capability="AVX2") == torch.float32


def test_an_arm_cpu_with_the_bf16_extension_computes_in_bfloat16():
    assert auto(ARM_BF16, capability="DEFAULT") == torch.bfloat16


def test_aten_cpu_capability_capped_below_avx512_makes_a_bf16_cpu_compute_in_float32():
    assert auto(AVX512_BF16, capability="AVX2") == torch.float32
    assert auto(AMX, capability="DEFAULT") == torch.float32


@pytest.mark.parametrize("isa", ["AVX2", "avx2", "AVX512_CORE", "AVX512_CORE_VNNI"])
def test_onednn_max_cpu_isa_below_avx512_core_bf16_makes_a_bf16_cpu_compute_in_float32(isa):
    assert auto(AVX512_BF16, ONEDNN_MAX_CPU_ISA=isa) == torch.float32
    assert auto(AVX512_BF16, DNNL_MAX_CPU_ISA=isa) == torch.float32  # oneDNN's older name for it


@pytest.mark.parametrize("isa", ["AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX10_1_512", "ALL", "DEFAULT", ""])
def test_onednn_max_cpu_isa_at_or_above_avx512_core_bf16_keeps_bfloat16(isa):
    assert auto(AVX512_BF16, ONEDNN_MAX_CPU_ISA=isa) == torch.bfloat16


def test_without_onednn_nothing_computes_bf16_fast_on_cpu():
    cpu = dataclasses.replace(dtypes.read_cpu(AVX512_BF16, "AVX512", {}), mkldnn=False)
    assert dtypes.resolve("auto", "cpu", cpu) == torch.float32


def test_cuda_computes_in_bfloat16_whatever_the_cpu():
    assert auto(AVX2_ONLY, capability="AVX2", device="cuda") == torch.bfloat16
    assert auto("", capability="DEFAULT", device=torch.device("cuda", 0), ONEDNN_MAX_CPU_ISA="AVX2") == torch.bfloat16


def test_a_named_dtype_is_taken_as_asked_and_an_unknown_one_is_refused():
    avx2 = dtypes.read_cpu(AVX2_ONLY, "AVX2", {})
    assert dtypes.resolve("bfloat16", "cpu", avx2) == torch.bfloat16
    assert dtypes.resolve("float32", "cuda", avx2) == torch.float32
    with pytest.raises(ValueError, match="unknown dtype 'fp8'"):
        dtypes.resolve("fp8", "cpu", avx2)


def test_the_cpu_model_and_its_bf16_flags_are_read_from_cpuinfo():
    cpu = dtypes.read_cpu(AVX2_ONLY, "AVX2", {})
    assert (cpu.model, cpu.avx512_bf16, cpu.amx_bf16, cpu.arm_bf16) == ("AMD EPYC", False, False, False)
    cpu = dtypes.read_cpu(AMX, "AVX512", {"ONEDNN_MAX_CPU_ISA": " avx512_core_amx "})
    assert (cpu.avx512_bf16, cpu.amx_bf16, cpu.onednn_max_cpu_isa) == (False, True, "AVX512_CORE_AMX")


def rule_in_a_process(**environ: str) -> dict:
    """What `python dtypes.py` reports in a fresh process: torch reads ATEN_CPU_CAPABILITY once, at start."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU's side of the rule, also on a machine with a GPU
    run = subprocess.run([sys.executable, str(PYTHON_DIR / "dtypes.py")], env={**env, **environ}, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


def test_the_rule_reads_the_capability_torch_runs_at_not_only_the_flags():
    capped = rule_in_a_process(ATEN_CPU_CAPABILITY="default")
    assert capped["torch_capability"] == "DEFAULT"
    assert capped["fast_bf16"] is False and capped["auto"] == "float32"
    assert rule_in_a_process(ONEDNN_MAX_CPU_ISA="AVX2")["auto"] == "float32"
    here = rule_in_a_process()
    assert here["device"] == "cpu" and here["auto"] == ("bfloat16" if here["fast_bf16"] else "float32")
