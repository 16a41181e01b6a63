"""
Three CPU passes of the default setup, each against the way it was computed before, the two ways
alternating round by round so that both see the same machine load (`ratio`: the median over rounds):

    python python/bench_cpu_passes.py prefill [--shards FILE.json ...] [--rounds 2] [--n 2]
    python python/bench_cpu_passes.py logprobs [--rows 4] [--prompt-tokens 550] [--response-tokens 128] [--rounds 2]
    python python/bench_cpu_passes.py micro-batches [--rows 4] [--prompt-tokens 550] [--response-tokens 128] [--rounds 2]

prefill: the embedded server's prefill of one test-stage batch (serving/decoding.py): each distinct
prompt from the longest prefix it shares with one before it, no padding (`shared`), against one
left-padded batch (`padded`). The prompts are the `messages` of test rollouts as a run stores them
(`runs/<run>/iter-<n>/tests/shard-*.json`; `make run` leaves them under .stack/s3-data/code-a1/), each
distinct prompt with `--n` choices; without --shards, the test prompts of a synthetic batch (3 problems
x 4 candidates of different lengths). Prints positions computed, seconds and the ratio.

logprobs: the trainer's forward and backward of one LoRA micro-batch (python/trainer.py,
token_logprobs) with logits only where a response token is predicted (`responses`) against logits at
every position (`all`), on random token ids (the cost does not depend on them).

micro-batches: the same rows' forward and backward (response positions only) one row per pass
(`single`) against all rows in one pass (`together`), each in a fresh process as the trainer runs an
update, with that process's peak RSS.

The model is the installed Qwen2.5-Coder-0.5B-Instruct conversion, in the dtype python/dtypes.py picks.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as the model server and the trainer set it
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

DEFAULT_MODEL = Path.home() / ".cache/code-a1/models/qwen2.5-coder-0.5b-instruct"


def cpu() -> dict:
    """What python/dtypes.py sees (as `python python/dtypes.py` prints it), and the cores."""
    from dataclasses import asdict
    import dtypes
    c = dtypes.read_cpu()
    return {**asdict(c), "fast_bf16": c.fast_bf16, "cores": os.cpu_count()}


def test_prompts(shards: list[Path]) -> list[list[dict]]:
    if not shards:
        rng = random.Random(7)
        instructions = "Write 4 assert tests that expose the bugs of the Buggy Code. " * 8
        prompts = []
        for problem in range(3):
            question = f"def f{problem}(xs: list) -> int:\n    \"\"\"Problem {problem}. " + "Explain the task. " * 20 + '"""\n'
            for _ in range(4):
                code = "\n".join(f"    x{i} = {rng.randrange(10**6)}" for i in range(rng.randrange(20, 60)))
                content = f"{instructions}\n\nQuestion:\n{question}\nBuggy Code:\n```python\ndef f{problem}(xs):\n{code}\n```"
                prompts.append([{"role": "user", "content": content}])
        return prompts
    seen, prompts = set(), []
    for shard in shards:
        for rollout in json.loads(shard.read_text()):
            key = json.dumps(rollout["messages"])
            if key not in seen:
                seen.add(key)
                prompts.append(rollout["messages"])
    return prompts


def bench_prefill(args) -> dict:
    from serving import decoding
    from serving.chat import Completion, Sequence, render_prompt
    from serving.engine import load_engine
    engine = load_engine(str(args.model), 1, "auto", max_loras=0)
    prompts = [render_prompt(engine, m) for m in test_prompts(args.shards)]

    def rows():
        seqs = []
        for ids in prompts:
            c = Completion(model="m", adapter_name=None, messages=[], prompt_ids=ids, tokenizer=engine.tokenizer, n=args.n,
                           temperature=1.0, top_p=1.0, max_tokens=1, stop=[], seed=0, return_token_ids=False)
            seqs += [Sequence(completion=c, index=i, generator=torch.Generator()) for i in range(args.n)]
        return seqs

    results = {"shared": [], "padded": []}
    for r in range(args.rounds):
        for name in (("shared", "padded") if r % 2 == 0 else ("padded", "shared")):
            started = time.perf_counter()
            with torch.inference_mode():
                out = decoding.prefill(engine, rows(), share_prefixes=name == "shared")
            results[name].append({"positions": out.computed, "seconds": round(time.perf_counter() - started, 2)})
    ratios = [p["seconds"] / s["seconds"] for p, s in zip(results["padded"], results["shared"])]
    return {"benchmark": "prefill", "dtype": str(engine.dtype), "prompts": len(prompts), "n": args.n,
            "promptTokens": sum(map(len, prompts)), **results, "ratio": round(statistics.median(ratios), 2), "ratios": [round(r, 2) for r in ratios]}


def lora_model_and_rows(args):
    import dtypes
    import trainer
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    device = torch.device("cpu")
    model = AutoModelForCausalLM.from_pretrained(str(args.model), dtype=dtypes.resolve("auto", device))  # the LoRA base
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.train()
    rng = random.Random(3)
    vocab = model.config.vocab_size
    rows = [([rng.randrange(3, vocab) for _ in range(args.prompt_tokens - 40 * (i % 3))],
             [rng.randrange(3, vocab) for _ in range(args.response_tokens)], 1.0) for i in range(args.rows)]
    return model, rows, trainer


def backward_seconds(model, trainer, rows, all_positions: bool = False) -> float:
    ids, attention, positions, mask, _ = trainer.model_batch(rows, "cpu", False)
    model.zero_grad(set_to_none=True)
    started = time.perf_counter()
    logp = trainer.token_logprobs(model, ids, attention, nullcontext, positions, None if all_positions else mask)
    (logp * mask).sum().backward()
    return time.perf_counter() - started


def bench_logprobs(args) -> dict:
    model, rows, trainer = lora_model_and_rows(args)
    results = {"responses": [], "all": []}
    for r in range(args.rounds):
        for name in (("responses", "all") if r % 2 == 0 else ("all", "responses")):
            results[name].append(round(backward_seconds(model, trainer, rows, all_positions=name == "all"), 2))
    ratios = [a / s for a, s in zip(results["all"], results["responses"])]
    return {"benchmark": "logprobs", "dtype": str(model.dtype), "rows": len(rows),
            "tokens": sum(len(p) + len(r) for p, r, _ in rows), "seconds": results,
            "ratio": round(statistics.median(ratios), 2), "ratios": [round(r, 2) for r in ratios]}


def bench_micro_batches(args) -> dict:
    """Each way in a fresh process, as the trainer runs each update: in a warm process the memory of
    the first pass is already mapped and the allocator's thresholds have grown, which hides most of
    the difference (one process alternating both ways measured a ratio of 0.98 under load)."""
    if args.only:
        import resource
        model, rows, trainer = lora_model_and_rows(args)
        chunks = [[row] for row in rows] if args.only == "single" else [rows]
        seconds = sum(backward_seconds(model, trainer, chunk) for chunk in chunks)
        return {"seconds": round(seconds, 2), "peakRssGiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 1)}
    results = {"single": [], "together": []}
    for r in range(args.rounds):
        for name in (("single", "together") if r % 2 == 0 else ("together", "single")):
            argv = [sys.executable, __file__, "micro-batches", "--only", name, "--model", str(args.model), "--rows", str(args.rows),
                    "--prompt-tokens", str(args.prompt_tokens), "--response-tokens", str(args.response_tokens)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1])["result"])
    ratios = [t["seconds"] / s["seconds"] for t, s in zip(results["together"], results["single"])]
    return {"benchmark": "micro-batches", "rows": args.rows, **results, "ratio": round(statistics.median(ratios), 2), "ratios": [round(r, 2) for r in ratios]}


PASSES = {"prefill": bench_prefill, "logprobs": bench_logprobs, "micro-batches": bench_micro_batches}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pass_", choices=list(PASSES), metavar="|".join(PASSES))
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--shards", type=Path, nargs="*", default=[])
    p.add_argument("--n", type=int, default=2)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--prompt-tokens", type=int, default=550)
    p.add_argument("--response-tokens", type=int, default=128)
    p.add_argument("--only", choices=["single", "together"], help=argparse.SUPPRESS)  # one fresh process of micro-batches
    args = p.parse_args(argv)
    result = PASSES[args.pass_](args)
    if args.only:
        print(json.dumps({"result": result}), flush=True)
        return result
    result.update(cpu=cpu(), loadAverage=round(os.getloadavg()[0], 1))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
