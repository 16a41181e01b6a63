"""LoRA adapters on the embedded model server (vLLM's runtime LoRA routes), against adapters built here
with peft on the SmolLM2 checkpoint and greedy references decoded in-process with peft."""
import json
import shutil
import threading

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from conftest import MODEL_NAME, ServerProcess
from serving.adapters import AdapterSet, read_adapter
from serving.chat import Completion, Sequence, render_prompt
from serving.decoding import prefill
from serving.engine import load_engine
from serving.scheduler import bind_adapter
from test_trainer import build_tiny_model

GREEDY = dict(max_tokens=8, temperature=0)
PROMPT = "Write a Python function that adds two numbers."


def build_adapter(checkpoint, out, seed: int, **config):
    """A peft LoRA adapter with random, non-zero lora_B (peft starts B at zero: the adapter would
    change nothing), saved with save_pretrained. B's scale moves SmolLM2's first greedy token."""
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # peft draws lora_A from the global generator
        peft_model = get_peft_model(model, LoraConfig(**config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(checkpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    # Different ranks, targets and scalings, so that a batch mixing them pads ranks and mixes layers.
    coder = build_adapter(checkpoint, root / "coder", seed=1, r=4, lora_alpha=8,
                          target_modules=["q_proj", "v_proj", "up_proj"], alpha_pattern={"v_proj": 2})
    tester = build_adapter(checkpoint, root / "tester", seed=2, r=8, lora_alpha=8, use_rslora=True,
                           target_modules=["k_proj", "o_proj", "gate_proj", "down_proj"])
    return {"coder": coder, "tester": tester}


@pytest.fixture(scope="module")
def lora_server(checkpoint):
    # float32: the greedy references are computed in float32 too, so the tokens must agree exactly.
    proc = ServerProcess(checkpoint, "--dtype", "float32", "--max-loras", "2", "--max-batch", "8",
                         "--batch-wait-ms", "50")
    yield proc
    proc.stop()


def chat(server, model: str, **params) -> dict:
    status, body = server.request("POST", "/v1/chat/completions",
                                  {"model": model, "messages": [{"role": "user", "content": PROMPT}], **GREEDY, **params})
    assert status == 200, body
    return body


def tokens(body: dict) -> list[int]:
    return body["choices"][0]["token_ids"]


def load(server, name: str, path) -> tuple[int, dict]:
    return server.request("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})


def cards(server) -> dict:
    status, body = server.request("GET", "/v1/models")
    assert status == 200
    return {card["id"]: card for card in body["data"]}


def peft_greedy(checkpoint, adapter, prompt_ids: list[int], steps: int) -> list[int]:
    """Greedy decoding with the adapter loaded by peft, as any peft user loads it."""
    base = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    eos = {base.generation_config.eos_token_id, base.config.eos_token_id} - {None}
    ids = list(prompt_ids)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the server sits idle meanwhile, but other processes may not: spinning OpenMP threads on a busy CPU cost 4x
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
            if ids[-1] in eos:
                break
    torch.set_num_threads(threads)
    return ids[len(prompt_ids):]


def loaded(server, adapters, *names: str) -> dict:
    """Makes exactly these adapters loaded (each test states what it needs); returns the cards."""
    for name in set(cards(server)) - {MODEL_NAME} - set(names):
        assert server.request("POST", "/v1/unload_lora_adapter", {"lora_name": name})[0] == 200
    for name in set(names) - set(cards(server)):
        status, card = load(server, name, adapters[name])
        assert status == 200, card
    return cards(server)


@pytest.fixture(scope="module")
def served(lora_server, adapters):
    """The greedy answers of the base (before any adapter was loaded) and of the coder adapter."""
    base = chat(lora_server, MODEL_NAME)
    loaded(lora_server, adapters, "coder")
    return {"base": base, "coder": chat(lora_server, "coder")}


def test_an_adapter_answers_by_name_as_peft_computes_it_and_the_base_stays_the_base(lora_server, served, adapters, checkpoint):
    base, coder = served["base"], served["coder"]
    assert tokens(coder) != tokens(base)
    assert tokens(coder) == peft_greedy(checkpoint, adapters["coder"], coder["prompt_token_ids"], GREEDY["max_tokens"])
    assert coder["model"] == "coder"
    again = chat(lora_server, MODEL_NAME)
    assert tokens(again) == tokens(base) and again["system_fingerprint"] == base["system_fingerprint"]


def test_sglangs_lora_path_with_the_base_as_model_selects_the_adapter(lora_server, served):
    status, body = lora_server.request("POST", "/v1/chat/completions", {
        "model": MODEL_NAME, "lora_path": "coder", "messages": [{"role": "user", "content": PROMPT}], **GREEDY})
    assert status == 200, body
    assert tokens(body) == tokens(served["coder"]) != tokens(served["base"])


def test_models_lists_the_adapter_with_its_path_parent_and_the_fingerprint_that_answers(lora_server, served, adapters):
    listed = loaded(lora_server, adapters, "coder")
    card = listed["coder"]
    path = str(adapters["coder"].resolve())
    assert {k: card[k] for k in ("object", "root", "parent")} == {"object": "model", "root": path, "parent": MODEL_NAME}
    assert card["checkpoint"]["path"] == path and isinstance(card["checkpoint"]["version"], int)
    assert card["checkpoint"]["fingerprint"] == chat(lora_server, "coder")["system_fingerprint"]
    assert card["checkpoint"]["fingerprint"] != listed[MODEL_NAME]["checkpoint"]["fingerprint"]
    assert lora_server.request("GET", "/v1/models/coder")[1] == card


def test_two_adapters_and_the_base_decode_in_one_batch_each_with_its_own_weights(lora_server, served, adapters, checkpoint):
    """Two choices per request: each request's prompt is prefilled once and copied to its rows."""
    card = loaded(lora_server, adapters, "coder", "tester")["tester"]
    tester = chat(lora_server, "tester")
    assert tokens(tester) == peft_greedy(checkpoint, adapters["tester"], tester["prompt_token_ids"], GREEDY["max_tokens"])
    assert tester["system_fingerprint"] == card["checkpoint"]["fingerprint"]

    before = lora_server.request("GET", "/health")[1]
    models = [MODEL_NAME, "coder", "tester"]
    answers = {}
    threads = [threading.Thread(target=lambda m=m: answers.update({m: chat(lora_server, m, n=2)})) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = lora_server.request("GET", "/health")[1]
    assert after["batches"] - before["batches"] < 3, "the three requests did not share a batch"
    alone = {MODEL_NAME: tokens(served["base"]), "coder": tokens(served["coder"]), "tester": tokens(tester)}
    assert {m: [c["token_ids"] for c in answers[m]["choices"]] for m in models} == {m: [alone[m]] * 2 for m in models}
    assert len({answers[m]["system_fingerprint"] for m in models}) == 3


def test_loading_past_max_loras_or_a_name_twice_is_400_and_changes_nothing(lora_server, served, adapters):
    loaded(lora_server, adapters, "coder", "tester")
    status, answer = load(lora_server, "third", adapters["coder"])
    assert status == 400 and "--max-loras" in answer["error"]["message"] and "2" in answer["error"]["message"]
    status, answer = load(lora_server, "coder", adapters["tester"])
    assert status == 400 and "already been loaded" in answer["error"]["message"]
    assert tokens(chat(lora_server, "coder")) == tokens(served["coder"])


def broken_adapters(good, root, tiny_adapter):
    """Directories that must not load: name -> path."""
    cases = {"missing": root / "missing", "empty": root / "empty", "other-base": tiny_adapter}
    (root / "empty").mkdir()
    for name, change in [
        ("unknown-module", lambda t: {k.replace("q_proj", "qq_proj"): v for k, v in t.items()}),
        ("wrong-shape", lambda t: {k: v[:, :-1].contiguous() if "lora_A" in k else v for k, v in t.items()}),
        ("nan", lambda t: {k: v.fill_(float("nan")) if "lora_B" in k else v for k, v in t.items()}),
    ]:
        shutil.copytree(good, root / name)
        save_file(change(load_file(root / name / "adapter_model.safetensors")), root / name / "adapter_model.safetensors")
        cases[name] = root / name
    shutil.copytree(good, root / "dora")
    config = json.loads((root / "dora" / "adapter_config.json").read_text())
    (root / "dora" / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    cases["dora"] = root / "dora"
    return cases


def test_adapters_that_do_not_load_are_400_and_the_loaded_ones_keep_serving(lora_server, served, adapters, tmp_path):
    loaded(lora_server, adapters, "coder")  # a free slot: the failures below are the directories' own
    tiny = build_tiny_model(tmp_path / "tiny")
    tiny_adapter = build_adapter(tiny, tmp_path / "tiny-adapter", seed=3, r=2, lora_alpha=4, target_modules=["q_proj"])
    for case, path in broken_adapters(adapters["coder"], tmp_path, tiny_adapter).items():
        status, answer = load(lora_server, "broken", path)
        assert status == 400, (case, answer)
        assert answer["error"]["param"] == "lora_path", (case, answer)
    assert "broken" not in cards(lora_server)
    assert tokens(chat(lora_server, "coder")) == tokens(served["coder"])


def test_unloading_stops_serving_the_name_and_a_reload_has_a_new_fingerprint(lora_server, served, adapters):
    loaded(lora_server, adapters, "coder")
    status, answer = lora_server.request("POST", "/v1/unload_lora_adapter", {"lora_name": "nobody"})
    assert status == 404, answer
    status, answer = lora_server.request("POST", "/v1/unload_lora_adapter", {"lora_name": "coder"})
    assert status == 200, answer
    assert "coder" not in cards(lora_server)
    status, answer = lora_server.request("POST", "/v1/chat/completions",
                                         {"model": "coder", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 404 and answer["error"]["code"] == "model_not_found"
    assert tokens(chat(lora_server, MODEL_NAME)) == tokens(served["base"])

    status, card = load(lora_server, "coder", adapters["coder"])
    assert status == 200, card
    again = chat(lora_server, "coder")
    assert tokens(again) == tokens(served["coder"])
    assert again["system_fingerprint"] == card["checkpoint"]["fingerprint"] != served["coder"]["system_fingerprint"]


def test_a_new_base_keeps_the_adapters_and_one_they_do_not_fit_is_refused(lora_server, served, adapters, checkpoint, tmp_path):
    loaded(lora_server, adapters, "coder")
    status, answer = lora_server.request("POST", "/v1/load_checkpoint", {"path": str(build_tiny_model(tmp_path / "tiny"))})
    assert status == 400 and "coder" in answer["error"]["message"], answer
    old = cards(lora_server)
    status, answer = lora_server.request("POST", "/v1/load_checkpoint", {"path": str(checkpoint)})
    assert status == 200, answer
    new = cards(lora_server)
    version = new[MODEL_NAME]["checkpoint"]["version"]
    assert version == old[MODEL_NAME]["checkpoint"]["version"] + 1
    assert f"-v{version}-coder-" in new["coder"]["checkpoint"]["fingerprint"]
    answer = chat(lora_server, "coder")
    assert tokens(answer) == tokens(served["coder"]) and answer["system_fingerprint"] == new["coder"]["checkpoint"]["fingerprint"]


# --------------------------------------------------------------------------------------------------
# In-process: what HTTP cannot time reliably


def test_a_request_whose_adapter_was_unloaded_before_or_while_it_decoded_fails_with_404(tmp_path):
    model = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "tiny"), dtype=torch.float32)
    adapter_dir = build_adapter(tmp_path / "tiny", tmp_path / "adapter", seed=0, r=2, lora_alpha=4, target_modules=["q_proj"])
    adapters = AdapterSet(model, max_loras=1, probe=lambda: True)
    engine = type("EngineStub", (), {"adapters": adapters})()

    def request() -> Completion:
        return Completion(model="a", adapter_name="a", messages=[], prompt_ids=[1], tokenizer=None, n=2,
                          temperature=0.0, top_p=1.0, max_tokens=1, stop=[], seed=None, return_token_ids=True)

    adapters.install("a", read_adapter(str(adapter_dir)), number=1, fingerprint="f")
    started, queued = request(), request()
    assert bind_adapter(started, engine) and started.adapter is adapters.get("a")
    adapters.remove("a")
    for c in (started, queued):
        assert not bind_adapter(c, engine)
        assert c.done.is_set() and c.error.status == 404 and c.error.code == "model_not_found"



def test_prefix_shared_prefill_computes_what_the_padded_batch_does_and_never_shares_across_adapters(checkpoint, adapters):
    """The prefill behind every CPU batch: prompts computed one by one from shared prefixes. Rows:
    a prompt twice (n = 2), a longer prompt that starts with it, the same longer prompt under an
    adapter (it may not start from the base's keys: the adapter changes them), an unrelated prompt."""
    engine = load_engine(str(checkpoint), 1, "float32", max_loras=1)
    coder = engine.adapters.install("coder", read_adapter(str(adapters["coder"])), number=1, fingerprint="f")
    question = "Write a Python function that adds two numbers."
    short = render_prompt(engine, [{"role": "user", "content": question}])
    long = render_prompt(engine, [{"role": "user", "content": question}, {"role": "assistant", "content": "def add(a, b):"},
                                  {"role": "user", "content": "Now test it with three asserts."}])
    other = render_prompt(engine, [{"role": "user", "content": "Name a prime number."}])
    assert len(long) > len(short) > 20 and long[:20] == short[:20]

    def rows():
        requests = [(short, None, 2), (long, None, 1), (long, coder, 1), (other, None, 1)]
        seqs = []
        for prompt, adapter, n in requests:
            c = Completion(model="m", adapter_name=None, messages=[], prompt_ids=prompt, tokenizer=engine.tokenizer, n=n,
                           temperature=0.0, top_p=1.0, max_tokens=1, stop=[], seed=None, return_token_ids=True)
            c.adapter = adapter
            seqs += [Sequence(completion=c, index=i, generator=torch.Generator()) for i in range(n)]
        return seqs

    with torch.inference_mode():
        padded, shared = prefill(engine, rows(), share_prefixes=False), prefill(engine, rows(), share_prefixes=True)
    width = len(long)
    assert padded.computed == 4 * width
    def common(a, b):
        return next(i for i, (x, y) in enumerate(zip(a + [-1], b)) if x != y)

    # short in full; long after short; long again under the adapter; other after the chat template's
    # system prompt, which it shares with short
    assert 0 < common(short, other) < len(other)
    assert shared.computed == len(short) + (len(long) - common(short, long)) + len(long) + len(other) - common(short, other)
    torch.testing.assert_close(shared.logits, padded.logits, rtol=1e-4, atol=1e-4)
    assert torch.equal(shared.mask, padded.mask) and torch.equal(shared.next_position, padded.next_position)
    valid = padded.mask.bool()
    for a, b in zip(padded.cache.layers, shared.cache.layers):
        for x, y in ((a.keys, b.keys), (a.values, b.values)):
            torch.testing.assert_close(y.transpose(1, 2)[valid], x.transpose(1, 2)[valid], rtol=1e-4, atol=1e-4)
    # The adapter's row really differs from the base's on the same prompt: sharing across them would show.
    assert not torch.allclose(shared.logits[2], shared.logits[3], atol=1e-3)
