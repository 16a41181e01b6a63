"""
How far a server's answer to the on-policy probe is from the trainer's for the same weights: the
measurement behind PROBE_TOLERANCE in activities/llm/probe.ts.

    .venv/bin/python python/probe_tolerance.py [CHECKPOINT_DIR]   (default: the installed Qwen2.5-Coder-0.5B)

Starts the embedded server on the checkpoint (its default dtype), asks it for the probe's greedy
completion with logprobs, computes the same completion with python/probe.py in bfloat16 and in
float32 (as the trainer holds LoRA bases and full weights), and prints, per dtype, how many greedy
tokens agree and the mean and max absolute log-prob difference over the compared tokens.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

import probe  # noqa: E402

PORT = 8199


def served_answer() -> dict:
    body = json.dumps({"model": "probe", "messages": probe.MESSAGES, "max_tokens": probe.MAX_TOKENS, "temperature": 0,
                       "logprobs": True, "top_logprobs": 1, "seed": 0}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{PORT}/v1/chat/completions", body, {"Content-Type": "application/json"})
    choice = json.load(urllib.request.urlopen(request))["choices"][0]
    return {"tokenIds": choice["token_ids"], "logprobs": [c["logprob"] for c in choice["logprobs"]["content"]]}


def main(checkpoint: str) -> None:
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("model_server.py")), "--checkpoint", checkpoint,
                               "--model-name", "probe", "--port", str(PORT)], stderr=subprocess.DEVNULL)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        trainer = {}
        for dtype in (torch.bfloat16, torch.float32):
            model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype)
            trainer[str(dtype).removeprefix("torch.")] = probe.greedy(model, tokenizer, "cpu", nullcontext)
            del model
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health")
                break
            except OSError:
                time.sleep(1)
        served = served_answer()
        for dtype, side in trainer.items():
            same = 0
            while same < min(len(served["tokenIds"]), len(side["tokenIds"])) and served["tokenIds"][same] == side["tokenIds"][same]:
                same += 1
            n = min(len(served["logprobs"]), len(side["logprobs"]), same + 1)  # as activities/llm/probe.ts compares
            diffs = [abs(a - b) for a, b in zip(served["logprobs"][:n], side["logprobs"][:n])]
            print(json.dumps({"trainerDtype": dtype, "sameTokens": same, "tokens": len(served["tokenIds"]),
                              "meanAbs": sum(diffs) / len(diffs), "maxAbs": max(diffs)}))
    finally:
        server.terminate()


if __name__ == "__main__":
    default = Path(os.environ.get("CODE_A1_CACHE", Path.home() / ".cache" / "code-a1")) / "models" / "qwen2.5-coder-0.5b-instruct"
    main(sys.argv[1] if len(sys.argv) > 1 else str(default))
