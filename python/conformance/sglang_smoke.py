"""
Starts the SGLang conformance server on a checkpoint and walks it through the conversation the
publishing client has with SGLang, checking what SGLang's own code answers. Run it after bumping
the sglang pin (python/requirements-sglang.txt):

    .venv-sglang/bin/python python/conformance/sglang_smoke.py --model DIR

Fixtures are made under a temporary directory next to nothing else: a second checkpoint directory
whose files link to DIR's (so the disk reload reads the same tensors) with a probe.json, one with
an extra optimizer-state file, one with a tensor of the wrong shape, and a rank-4 LoRA adapter.
Prints one JSON line per check; exits 1 when one fails.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = [
    {"role": "system", "content": "You are a careful Python programmer."},
    {"role": "user", "content": "Write f."},
]


def call(base: str, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (urllib.error.URLError, ConnectionError) as e:
        return None, repr(e)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def make_fixtures(model: str, root: str) -> dict:
    with open(os.path.join(model, "config.json")) as f:
        config = json.load(f)
    dirs = {}
    for name in ("v1", "extra", "shape"):
        d = dirs[name] = os.path.join(root, name)
        os.makedirs(d)
        for f in os.listdir(model):
            if f != "probe.json":
                os.symlink(os.path.join(model, f), os.path.join(d, f))
    # probe.json: what the stub answers for the probe's greedy request (tokens from the tokenizer's vocabulary).
    ids = [16, 17, 18]
    probe = {
        "format": "code-a1-probe-v1", "messages": MESSAGES, "maxTokens": 16, "dtype": "float32",
        "current": {"tokenIds": ids, "tokens": ["1", "2", "3"], "logprobs": [-0.25, -0.5, -0.75]},
    }
    with open(os.path.join(dirs["v1"], "probe.json"), "w") as f:
        json.dump(probe, f)
    optimizer_state = {"exp_avg.model.norm.weight": torch.zeros(config["hidden_size"])}
    save_file(optimizer_state, os.path.join(dirs["extra"], "optimizer.safetensors"))
    weights = [f for f in os.listdir(model) if f.endswith(".safetensors")]
    shape_file = os.path.join(dirs["shape"], weights[0])
    tensors = load_file(shape_file)
    os.unlink(shape_file)
    tensors["model.norm.weight"] = torch.ones(config["hidden_size"] + 1)
    save_file(tensors, shape_file, metadata={"format": "pt"})

    adapter = dirs["adapter"] = os.path.join(root, "adapter")
    os.makedirs(adapter)
    h, heads, kv = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = h // heads
    lora = {}
    for i in range(config["num_hidden_layers"]):
        for proj, out in (("q_proj", heads * head_dim), ("v_proj", kv * head_dim)):
            prefix = f"base_model.model.model.layers.{i}.self_attn.{proj}"
            lora[prefix + ".lora_A.weight"] = torch.zeros(4, h)
            lora[prefix + ".lora_B.weight"] = torch.zeros(out, 4)
    save_file(lora, os.path.join(adapter, "adapter_model.safetensors"))
    with open(os.path.join(adapter, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                   "task_type": "CAUSAL_LM", "base_model_name_or_path": model}, f)
    with open(os.path.join(adapter, "probe.json"), "w") as f:
        json.dump({**probe, "current": {**probe["current"], "logprobs": [-1.0, -1.0, -1.0]}}, f)
    return dirs


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    model = os.path.abspath(args.model)
    failures = 0

    def check(name: str, ok: bool, **detail) -> None:
        nonlocal failures
        failures += not ok
        print(json.dumps({"check": name, "ok": bool(ok), **detail}, default=str)[:2000], flush=True)

    with tempfile.TemporaryDirectory(prefix="sglang-smoke-") as root:
        dirs = make_fixtures(model, root)
        started = time.perf_counter()
        command = [
            sys.executable, os.path.join(HERE, "sglang_server.py"), "--model", model, "--served-model-name", "base",
            "--enable-lora", "--max-lora-rank", "8", "--lora-target-modules", "q_proj", "k_proj", "v_proj", "o_proj",
        ]
        stderr = open(os.path.join(root, "server.err"), "w")
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            line = server.stdout.readline().strip()
            seconds = round(time.perf_counter() - started, 1)
            check("ready line", line.startswith("ready http://127.0.0.1:"), line=line, seconds=seconds)
            if not line.startswith("ready "):
                return 1
            base = line.split(" ", 1)[1]

            def model_info() -> dict:
                info = call(base, "GET", "/model_info")[1]
                return {k: info.get(k) for k in ("model_path", "served_model_name", "weight_version")}

            def last_event() -> dict:
                log = call(base, "GET", "/conformance/log")[1]
                return log[-1] if log else {}

            def chat(**fields) -> tuple:
                body = {"model": "base", "messages": MESSAGES, "temperature": 0, "logprobs": True,
                        "max_tokens": 16, "top_k": -1, "min_p": 0, "repetition_penalty": 1,
                        "return_token_ids": True, "return_prompt_token_ids": True, **fields}
                status, answer = call(base, "POST", "/v1/chat/completions", body)
                choices = answer.get("choices") if isinstance(answer, dict) else None
                return status, answer, (choices or [{}])[0]

            info = model_info()
            check("model_info names the launch checkpoint",
                  info["model_path"] == model and info["weight_version"] == "default", info=info)

            status, answer, choice = chat()
            check("chat answers token ids and weight_version",
                  status == 200 and choice.get("response_token_ids") and choice.get("prompt_token_ids")
                  and answer.get("metadata", {}).get("weight_version") == "default", status=status)
            sp = last_event().get("sampling_params", {})
            check("the request's sampling params override generation_config",
                  sp.get("top_k") == -1 and sp.get("repetition_penalty") == 1 and sp.get("temperature") == 0,
                  sampling_params=sp)

            status, body = call(base, "POST", "/update_weights_from_disk",
                                {"model_path": dirs["v1"], "weight_version": "it1", "flush_cache": True})
            check("disk reload succeeds", status == 200 and body.get("success") is True, body=body)
            info = model_info()
            check("model_info reports the new path and version",
                  info["model_path"] == dirs["v1"] and info["weight_version"] == "it1", info=info)
            event = last_event()
            check("the reload read every tensor into SGLang's parameters",
                  event.get("tensors", 0) > 0 and not event.get("unexpected") and not event.get("missing"),
                  event={k: event.get(k) for k in ("files", "tensors", "unexpected", "missing", "error")})

            status, answer, choice = chat()
            logprobs = [c["logprob"] for c in ((choice.get("logprobs") or {}).get("content") or [])]
            check("the probe request gets the checkpoint's probe answer",
                  choice.get("response_token_ids") == [16, 17, 18] and logprobs == [-0.25, -0.5, -0.75],
                  ids=choice.get("response_token_ids"), logprobs=logprobs)

            status, body = call(base, "POST", "/update_weights_from_disk",
                                {"model_path": dirs["extra"], "weight_version": "it2"})
            event = last_event()
            check("an extra .safetensors file is loaded as weights",
                  body.get("success") is True and "optimizer.safetensors" in event.get("files", []),
                  files=event.get("files"), unexpected=event.get("unexpected"))

            status, body = call(base, "POST", "/load_lora_adapter", {"lora_name": "it3", "lora_path": dirs["adapter"]})
            check("adapter loads", status == 200 and body.get("success") is True, body=body)
            models = call(base, "GET", "/v1/models")[1]
            listed = any(m.get("id") == "it3" for m in models.get("data", []))
            check("/v1/models lists the adapter", listed, models=models)
            chat(lora_path="it3")
            event = last_event()
            check("lora_path selects the adapter",
                  event.get("lora") == "it3" and event.get("lora_path") == dirs["adapter"], lora=event.get("lora"))
            chat(model="it3")
            check("a bare adapter name as model selects the base", last_event().get("lora") is None)
            status, body = call(base, "POST", "/unload_lora_adapter", {"lora_name": "it3"})
            check("adapter unloads", status == 200 and body.get("success") is True, body=body)

            status, body = call(base, "POST", "/update_weights_from_disk",
                                {"model_path": dirs["shape"], "weight_version": "it4"})
            time.sleep(2)
            check("a reload whose tensor does not fit takes SGLang down (its rollback reloads the same files)",
                  server.poll() is not None, status=status, exit=server.poll())
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(30)
            stderr.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
