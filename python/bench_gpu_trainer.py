"""
The built-in trainer on a GPU: tokens/s, model FLOPs utilisation and peak memory of one policy update
of Qwen2.5-Coder-0.5B-Instruct (bf16 compute, fp32 master weights), full weights and LoRA.

    python python/bench_gpu_trainer.py [--model DIR] [--modes full,lora,full-packed] [--devices N] [--dtype auto]
        [--rollouts 128] [--prompt-tokens 512] [--response-tokens 512] [--micro-batch 8] [--peak-tflops 989]

Nothing is fetched: `--model` (default: the installed conversion under ~/.cache/code-a1/models) when
it holds weights, else the same architecture (`--shape`) with random weights written to a scratch
directory, since the cost of a step does not depend on the weights' values. Token ids are random.
Each mode is one run of python/trainer.py (under python/torchrun.py with --devices > 1) on its own
job: full weights with a separate reference (as every iteration after a run's first), LoRA rank 16
on all seven projections of the base; `-packed` modes add packed rows and a token budget. `--dtype`
is the trainer's `dtype` (python/dtypes.py: auto is bf16 on CUDA); each mode reports the dtypes used.

Model FLOPs utilisation is 6 * N * tokens / seconds / (devices * peak), N the weights a token is
multiplied by (all but the input embedding; a tied output layer counts once), over the training
loop (`train_mfu`); `update_mfu` also counts 2 * N per token for each frozen log-prob pass (old and
reference) over the whole update. Attention's own FLOPs are left out, and LoRA computes no weight
gradients for its base (about 4N rather than 6N per token), so for LoRA the figure is the 6N
convention, an upper bound on real work. --peak-tflops is one device's dense bf16 peak: 989 for
H100 and H200 SXM.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = Path.home() / ".cache/code-a1/models/qwen2.5-coder-0.5b-instruct"
SHAPES = {  # the architecture fields of the installed conversion's config.json
    "qwen2.5-coder-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                               num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                               rms_norm_eps=1e-6, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 vocab_size=512, max_position_embeddings=4096, rms_norm_eps=1e-6, tie_word_embeddings=False),
}
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LORA = {"rank": 16, "alpha": 32, "dropout": 0, "targetModules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}


def has_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and any(d.glob("*.safetensors"))


def synthetic_model(shape: str, out: Path) -> Path:
    """The architecture of `shape` with random weights, and a small character-level tokenizer with a
    chat template (the trainer needs one for the probe; the rollouts are token ids)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, Qwen2Config, PreTrainedTokenizerFast

    config = Qwen2Config(**SHAPES[shape], bos_token_id=1, eos_token_id=2, pad_token_id=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # random initialisation on the GPU takes seconds, on CPU minutes
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    del model
    chars = sorted(set("".join(chr(c) for c in range(32, 127)) + "\n"))
    vocab = {"<pad>": 0, "<|im_start|>": 1, "<|im_end|>": 2, **{c: i + 3 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>",
                            chat_template=CHAT_TEMPLATE).save_pretrained(out)
    return out


def model_flops_params(model_dir: Path) -> int:
    """N of 6N: parameters without the input embedding (a lookup, not a product); tied, it is the output layer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    total = sum(p.numel() for p in model.parameters())  # a tied output layer is the embedding, counted once
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    return total if tied else total - model.get_input_embeddings().weight.numel()


def run_mode(mode: str, model: Path, work: Path, args, rollouts: list[dict]) -> dict:
    lora = mode.startswith("lora")
    config = {"learningRate": 1e-5 if lora else 1e-6, "warmupSteps": 0, "microBatchSize": args.micro_batch, "dtype": args.dtype}
    if lora:
        config["lora"] = LORA
    if mode.endswith("-packed"):
        config.update(pack=True, microBatchTokens=args.micro_batch * (args.prompt_tokens + args.response_tokens))
    reference = work / "reference"  # the same files under another name: loaded and run as a separate model
    if not reference.exists():
        reference.mkdir()
        for f in model.iterdir():
            (reference / f.name).symlink_to(f)
    job = {"role": "code", "policy": str(model), "reference": str(model if lora else reference), "adapter": None,
           "optimizerState": None, "output": str(work / mode), "config": config, "rollouts": rollouts}
    path = work / f"{mode}.json"
    path.write_text(json.dumps(job))
    launcher = [sys.executable, str(PYTHON_DIR / "torchrun.py"), "--standalone", f"--nproc_per_node={args.devices}"] if args.devices > 1 else [sys.executable]
    started = time.time()
    run = subprocess.run([*launcher, str(PYTHON_DIR / "trainer.py"), str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{mode}: the trainer exited with status {run.returncode}:\n{run.stderr[-3000:]}")
    metrics = json.loads((work / mode / "metrics.json").read_text())
    shutil.rmtree(work / mode)  # a full checkpoint with its optimizer state is gigabytes
    metrics["wall_seconds"] = time.time() - started
    return metrics


def summary(mode: str, m: dict, n: int, peak_flops: float, frozen_passes: int) -> dict:
    tokens = m["tokens"]
    return {
        "mode": mode,
        "world_size": m["world_size"],
        "tokens": tokens,
        "train_tokens_per_s": round(m["train_tokens_per_s"], 1),
        "update_tokens_per_s": round(m["tokens_per_s"], 1),
        "train_mfu": float(f"{6 * n * tokens / m['train_seconds'] / peak_flops:.3g}"),
        "update_mfu": float(f"{(6 + 2 * frozen_passes) * n * tokens / (m['logprob_seconds'] + m['train_seconds']) / peak_flops:.3g}"),
        "peak_memory_gib": round(m["peak_memory_bytes"] / 2**30, 2),
        "train_seconds": round(m["train_seconds"], 2),
        "logprob_seconds": round(m["logprob_seconds"], 2),
        "load_seconds": round(m["load_seconds"], 2),
        "wall_seconds": round(m["wall_seconds"], 1),
        "trainable_parameters": m["trainable_parameters"],
        "base_dtype": m["base_dtype"],
        "compute_dtype": m["compute_dtype"],
        "cuda": m["cuda"],
    }


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-coder-0.5b", help="architecture of random weights when --model has none")
    p.add_argument("--modes", default="full,lora,full-packed")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--dtype", choices=["auto", "bfloat16", "float32"], default="auto", help="the trainer's dtype (python/dtypes.py)")
    p.add_argument("--rollouts", type=int, default=128)
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--response-tokens", type=int, default=512)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="one device's dense bf16 peak in TFLOP/s (H100/H200 SXM: 989)")
    p.add_argument("--work-dir", type=Path, default=None)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="code-a1-gpu-trainer-", dir=args.work_dir))
    try:
        model = args.model if has_weights(args.model) else synthetic_model(args.shape, work / "model")
        n = model_flops_params(model)
        vocab = json.loads((model / "config.json").read_text())["vocab_size"]
        rng = random.Random(12345)
        draw = lambda k: [rng.randrange(3, vocab) for _ in range(k)]  # noqa: E731
        rollouts = [{"promptTokenIds": draw(args.prompt_tokens), "responseTokenIds": draw(args.response_tokens),
                     "advantage": 1.0 if i % 2 == 0 else -1.0} for i in range(args.rollouts)]
        print(json.dumps({"model": str(model), "random_weights": model != args.model, "flops_parameters": n,
                          "devices": args.devices, "peak_tflops_per_device": args.peak_tflops}), flush=True)
        results = []
        for mode in args.modes.split(","):
            metrics = run_mode(mode, model, work, args, rollouts)
            frozen_passes = 2  # old log-probs, then the reference's (with LoRA: the base with the adapter off)
            results.append(summary(mode, metrics, n, args.peak_tflops * 1e12 * args.devices, frozen_passes))
            print(json.dumps(results[-1]), flush=True)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    main()
