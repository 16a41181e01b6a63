"""Checks the vLLM conformance server by hand: starts it twice and exercises the routes the
publishing client uses. Prints one line per check and exits non-zero when one fails.

  .venv-vllm/bin/python python/conformance/check_vllm.py [--model DIR]

Without --model it builds a tiny random Qwen2 checkpoint (a few MB, its own small tokenizer);
with --model it uses that checkpoint's files through symbolic links. Either way the served copy
gets Qwen's upstream sampling defaults in generation_config.json, and the fixtures beside it are
written here: two LoRA adapters (one within --max-lora-rank, one above), a checkpoint copy with
an on-policy probe.json, and one with a stray adapter file next to its weights.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "vllm_server.py")
QWEN_SAMPLING = {"repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.8}
PROBE_MESSAGES = [{"role": "user", "content": "Write a function that adds two numbers."}]
MAX_LORA_RANK = 16


def build_tiny_model(out: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = ["```python\ndef f(x):\n    return x\n```", "def add(a, b):\n    return a + b\n"] * 50
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(corpus + [m["content"] for m in PROBE_MESSAGES], trainer)
    template = (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=template
    ).save_pretrained(out)
    config = Qwen2Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.token_to_id("<|im_end|>"),
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(out)


def linked_copy(src: str, dst: str, skip=("generation_config.json", "probe.json")) -> None:
    os.makedirs(dst)
    for name in os.listdir(src):
        if name not in skip:
            os.symlink(os.path.join(os.path.abspath(src), name), os.path.join(dst, name))


def write_adapter(out: str, model_dir: str, rank: int) -> None:
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    outputs = {
        "q_proj": config["num_attention_heads"] * head_dim,
        "v_proj": config["num_key_value_heads"] * head_dim,
    }
    tensors = {}
    for layer in range(config["num_hidden_layers"]):
        for module, size in outputs.items():
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.zeros(rank, hidden)
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(size, rank)
    os.makedirs(out)
    save_file(tensors, os.path.join(out, "adapter_model.safetensors"))
    with open(os.path.join(out, "adapter_config.json"), "w") as f:
        json.dump(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "r": rank,
                "lora_alpha": 2 * rank,
                "lora_dropout": 0.0,
                "bias": "none",
                "target_modules": list(outputs),
                "base_model_name_or_path": model_dir,
            },
            f,
        )


def write_probe(directory: str, token_ids: list[int]) -> None:
    record = {
        "format": "code-a1-probe-v1",
        "messages": PROBE_MESSAGES,
        "maxTokens": len(token_ids),
        "dtype": "float32",
        "current": {
            "tokenIds": token_ids,
            "tokens": [str(t) for t in token_ids],
            "logprobs": [-0.125 * (i + 1) for i in range(len(token_ids))],
        },
    }
    with open(os.path.join(directory, "probe.json"), "w") as f:
        json.dump(record, f)


def fixtures(root: str, model: str | None) -> dict[str, str]:
    paths = {name: os.path.join(root, name) for name in ("base", "lora", "lora-big", "ckpt-b", "ckpt-stray")}
    if model is None:
        build_tiny_model(os.path.join(root, "tiny"))
        model = os.path.join(root, "tiny")
    linked_copy(model, paths["base"])
    with open(os.path.join(paths["base"], "generation_config.json"), "w") as f:
        json.dump(QWEN_SAMPLING, f)
    write_adapter(paths["lora"], paths["base"], 8)
    write_adapter(paths["lora-big"], paths["base"], 4 * MAX_LORA_RANK)
    write_probe(paths["lora"], [7, 8, 9])
    linked_copy(paths["base"], paths["ckpt-b"], skip=())
    write_probe(paths["ckpt-b"], [11, 12, 13, 14])
    linked_copy(paths["base"], paths["ckpt-stray"], skip=())
    os.symlink(
        os.path.join(paths["lora"], "adapter_model.safetensors"),
        os.path.join(paths["ckpt-stray"], "adapter_model.safetensors"),
    )
    return paths


class Server:
    def __init__(self, args: list[str], env: dict[str, str], log_path: str) -> None:
        self.log = open(log_path, "w")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, SERVER, *args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, **env},
        )
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"the server did not start (see {log_path})")
        self.url = line.split()[1]
        self.start_seconds = time.monotonic() - started

    def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                status, raw = response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read().decode()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw

    def events(self) -> list[dict]:
        return self.call("GET", "/conformance/log")[1]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


failures = 0


def check(name: str, ok: bool, detail: object = "") -> None:
    global failures
    failures += 0 if ok else 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {str(detail)[:600]}"), flush=True)


def chat(server: Server, model: str, **fields) -> tuple[int, object]:
    return server.call("POST", "/v1/chat/completions", {"model": model, "messages": PROBE_MESSAGES, **fields})


def greedy(server: Server, model: str) -> tuple[int, object]:
    return chat(
        server,
        model,
        max_tokens=4,
        temperature=0,
        top_p=1,
        logprobs=True,
        top_logprobs=1,
        return_token_ids=True,
        seed=0,
    )


def check_dev_server(paths: dict[str, str], root: str) -> None:
    server = Server(
        [
            "--model",
            paths["base"],
            "--served-model-name",
            "base",
            "--enable-lora",
            "--max-lora-rank",
            str(MAX_LORA_RANK),
            "--dev-mode",
        ],
        {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"},
        os.path.join(root, "server-dev.log"),
    )
    print(f"     server with LoRA and dev mode ready in {server.start_seconds:.1f} s", flush=True)
    try:
        status, body = server.call("GET", "/v1/models")
        check("/v1/models lists the served name", status == 200 and body["data"][0]["id"] == "base", body)

        status, body = chat(server, "base", max_tokens=5, return_token_ids=True)
        event = server.events()[-1]
        params = event.get("sampling_params", {})
        check(
            "unset sampling fields come from generation_config.json",
            all(params.get(k) == v for k, v in QWEN_SAMPLING.items()),
            params,
        )
        check(
            "token ids come back with return_token_ids",
            status == 200 and body.get("prompt_token_ids") and len(body["choices"][0]["token_ids"]) == 5,
            body,
        )
        check("the log keeps the raw request body", event.get("body", {}).get("max_tokens") == 5, event)

        status, body = chat(server, "no-such-model")
        check("an unknown model is a 404", status == 404, body)

        status, body = server.call(
            "POST", "/v1/load_lora_adapter", {"lora_name": "step-1", "lora_path": paths["lora"]}
        )
        check(
            "loading an adapter answers vLLM's plain-text success",
            status == 200 and str(body).startswith("Success"),
            body,
        )
        status, body = server.call(
            "POST", "/v1/load_lora_adapter", {"lora_name": "big", "lora_path": paths["lora-big"]}
        )
        check(
            "an adapter above --max-lora-rank fails with vLLM's error",
            status == 500 and "max_lora_rank" in str(body),
            (status, body),
        )
        status, body = greedy(server, "step-1")
        event = server.events()[-1]
        check(
            "a greedy probe request on the adapter gets the adapter's probe answer",
            status == 200 and body["choices"][0]["token_ids"] == [7, 8, 9] and event["lora"] == "step-1",
            (body, event),
        )

        check("/pause", server.call("POST", "/pause?mode=abort")[0] == 200)
        status, body = chat(server, "base", max_tokens=2)
        check("a paused engine rejects requests with 503", status == 503, (status, body))
        check("/is_paused while paused", server.call("GET", "/is_paused")[1] == {"is_paused": True})
        check("/resume", server.call("POST", "/resume")[0] == 200)

        status, body = server.call(
            "POST",
            "/collective_rpc",
            {"method": "reload_weights", "kwargs": {"weights_path": paths["ckpt-b"]}},
        )
        event = server.events()[-1]
        check("reload_weights from a checkpoint directory", status == 200, (status, body))
        check(
            "the reload read the weights and placed every tensor",
            event.get("files") == ["model.safetensors"]
            and event.get("tensors", 0) > 0
            and event.get("unexpected") == []
            and event.get("missing") == [],
            event,
        )
        status, body = greedy(server, "base")
        check(
            "after the reload the base answers with the new checkpoint's probe",
            status == 200 and body["choices"][0]["token_ids"] == [11, 12, 13, 14],
            body,
        )

        status, body = server.call(
            "POST",
            "/collective_rpc",
            {"method": "reload_weights", "kwargs": {"weights_path": paths["ckpt-stray"]}},
        )
        event = server.events()[-1]
        check(
            "a stray .safetensors beside the weights fails the reload with a 500",
            status == 500,
            (status, body),
        )
        check(
            "the log shows the stray file selected and the name vLLM could not place",
            "adapter_model.safetensors" in event.get("files", []) and event.get("unexpected"),
            event,
        )

        check("/reset_prefix_cache", server.call("POST", "/reset_prefix_cache")[1] == {"success": True})
        status, _ = server.call("POST", "/update_weight_version", {"new_version": "step-2"})
        check(
            "/update_weight_version is recorded",
            status == 200
            and server.events()[-1] == {"route": "update_weight_version", "weight_version": "step-2"},
        )
        server.call("POST", "/conformance/reset")
        check("/conformance/reset clears the log", server.events() == [])
    finally:
        server.stop()


def check_plain_server(paths: dict[str, str], root: str) -> None:
    env = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "0", "VLLM_SERVER_DEV_MODE": "0"}
    server = Server(
        ["--model", paths["base"], "--served-model-name", "base", "--generation-config", "vllm"],
        env,
        os.path.join(root, "server-plain.log"),
    )
    print(f"     server without dev mode ready in {server.start_seconds:.1f} s", flush=True)
    try:
        for method, path in (
            ("POST", "/pause"),
            ("POST", "/collective_rpc"),
            ("POST", "/v1/load_lora_adapter"),
        ):
            status, _ = server.call(method, path, {})
            check(f"{path} does not exist without the environment switches", status == 404, status)
        chat(server, "base", max_tokens=2)
        params = server.events()[-1]["sampling_params"]
        check(
            "--generation-config vllm keeps vLLM's neutral defaults",
            params["top_k"] in (0, -1)
            and params["repetition_penalty"] == 1.0
            and params["temperature"] == 1.0,
            params,
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a Qwen2 checkpoint directory (default: a tiny random one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="check-vllm-") as root:
        paths = fixtures(root, args.model)
        check_dev_server(paths, root)
        check_plain_server(paths, root)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
