"""The embedded model server against the real converted SmolLM2 checkpoint. Generations are kept to a
few tokens: the point is the API contract, not the text."""
import json
import threading

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import MODEL_NAME, ServerProcess
from serving.attention import grouped_decode_attention
from serving.kv_cache import GROWTH, GrowingLayer
from serving.packed_linear import PackedLinear, can_pack, pack_linears
from transformers.integrations.sdpa_attention import sdpa_attention_forward

PROMPT = "Write a Python function that adds two numbers."


@pytest.fixture(scope="module")
def tokenizer(checkpoint):
    return AutoTokenizer.from_pretrained(checkpoint)


def test_models_lists_the_served_name_and_checkpoint(server, checkpoint):
    status, body = server.request("GET", "/v1/models")
    assert status == 200 and body["object"] == "list"
    [card] = body["data"]
    assert card["id"] == MODEL_NAME and card["object"] == "model"
    assert card["checkpoint"]["path"] == str(checkpoint.resolve())
    assert server.request("GET", f"/v1/models/{MODEL_NAME}")[1]["id"] == MODEL_NAME
    assert server.request("GET", "/health")[1]["status"] == "ok"


def test_a_completion_has_the_openai_shape_and_usage(server):
    body = server.chat(max_tokens=6, seed=0)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == MODEL_NAME and isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(body["prompt_token_ids"]) > 0
    assert usage["completion_tokens"] == len(choice["token_ids"]) <= 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_n_returns_that_many_choices_counted_in_usage(server):
    body = server.chat(n=3, max_tokens=5, seed=7, temperature=1.0)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == sum(len(c["token_ids"]) for c in body["choices"])
    # Each choice has its own random stream: three identical samples would mean a shared one.
    assert len({tuple(c["token_ids"]) for c in body["choices"]}) > 1


def test_the_same_seed_reproduces_the_sample_and_other_seeds_differ(server):
    params = dict(n=2, max_tokens=8, temperature=1.0, top_p=0.95)
    first, again = server.chat(seed=1234, **params), server.chat(seed=1234, **params)
    assert [c["token_ids"] for c in first["choices"]] == [c["token_ids"] for c in again["choices"]]
    assert [c["message"]["content"] for c in first["choices"]] == [c["message"]["content"] for c in again["choices"]]
    others = {tuple(server.chat(seed=s, **params)["choices"][0]["token_ids"]) for s in (1, 2, 3)}
    assert len(others | {tuple(first["choices"][0]["token_ids"])}) > 1


def test_max_tokens_cuts_the_answer_with_finish_reason_length(server):
    [choice] = server.chat(max_tokens=3, temperature=0)["choices"]
    assert choice["finish_reason"] == "length" and len(choice["token_ids"]) == 3


def test_a_stop_string_ends_the_answer_before_it(server):
    greedy = server.chat(max_tokens=16, temperature=0)["choices"][0]["message"]["content"]
    stop = greedy[6:9]  # a piece from the middle of what greedy decoding is known to write
    assert len(stop) == 3, greedy
    [choice] = server.chat(max_tokens=16, temperature=0, stop=["\x00never", stop])["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == greedy[: greedy.find(stop)]


def test_token_ids_are_the_rendered_prompt_and_decode_to_the_answer(server, tokenizer):
    body = server.chat(max_tokens=8, temperature=0)
    messages = [{"role": "user", "content": PROMPT}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert body["prompt_token_ids"] == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    [choice] = body["choices"]
    assert tokenizer.decode(choice["token_ids"], skip_special_tokens=True) == choice["message"]["content"]


def test_an_answer_that_ends_by_itself_keeps_its_end_token(server, tokenizer):
    [choice] = server.chat("What is the capital of France?", max_tokens=32, temperature=0)["choices"]
    assert choice["finish_reason"] == "stop", choice
    assert choice["token_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(choice["token_ids"], skip_special_tokens=True) == choice["message"]["content"]


def test_ignore_eos_decodes_past_the_end_token_up_to_max_tokens(server, tokenizer):
    [ended] = server.chat("What is the capital of France?", max_tokens=32, temperature=0)["choices"]
    assert ended["finish_reason"] == "stop"
    [choice] = server.chat("What is the capital of France?", max_tokens=40, temperature=0, ignore_eos=True)["choices"]
    assert choice["finish_reason"] == "length" and len(choice["token_ids"]) == 40
    assert choice["token_ids"][:len(ended["token_ids"])] == ended["token_ids"]


def test_token_ids_can_be_left_out(server):
    body = server.chat(max_tokens=2, return_token_ids=False)
    assert "prompt_token_ids" not in body and "token_ids" not in body["choices"][0]


def at_once(count: int, call) -> list:
    """call(0) ... call(count - 1), each on its own thread, released together; their results."""
    results, start = [None] * count, threading.Barrier(count)

    def run(i):
        start.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_requests_share_batches(server):
    before = server.request("GET", "/health")[1]
    results = at_once(4, lambda i: server.chat(f"Count to {i + 2}.", max_tokens=4, seed=i))
    after = server.request("GET", "/health")[1]
    assert all(len(r["choices"]) == 1 for r in results)
    assert after["sequences"] - before["sequences"] == 4
    assert after["batches"] - before["batches"] < 4


def test_a_burst_of_requests_sent_at_once_is_decoded_as_one_batch(checkpoint):
    """As a generation stage sends them: 16 connections at once. Each must be accepted at once: with a
    listen backlog of 5 some were dropped, retried by their clients a second later, and decoded in a
    batch of their own after the first had finished. The wait is long here, so that a slow machine
    parsing the requests one by one still batches them; a retried connection comes a second later."""
    proc = ServerProcess(checkpoint, "--max-batch", "32", "--batch-wait-ms", "400", "--max-batch-wait-ms", "5000")
    try:
        before = proc.request("GET", "/health")[1]
        at_once(16, lambda i: proc.chat(f"Count to {i + 2}.", max_tokens=2, seed=i))
        after = proc.request("GET", "/health")[1]
    finally:
        proc.stop()
    assert after["sequences"] - before["sequences"] == 16
    assert after["batches"] - before["batches"] == 1


@pytest.mark.parametrize("body, param", [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages"),
    ({"n": 0}, "n"),
    ({"n": "2"}, "n"),
    ({"temperature": 5}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 100_000}, "messages"),
    ({"stop": ""}, "stop"),
    ({"stop": [1]}, "stop"),
    ({"seed": 1.5}, "seed"),
    ({"stream": True}, "stream"),
    ({"top_k": 20}, "top_k"),
    ({"repetition_penalty": 1.1}, "repetition_penalty"),
    ({"min_p": 0.05}, "min_p"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"lora_path": "no-such-adapter", "model": "other"}, "lora_path"),
    ({"ignore_eos": 1, "max_tokens": 4}, "ignore_eos"),
    ({"ignore_eos": True}, "ignore_eos"),
])
def test_bad_parameters_are_answered_with_400(server, body, param):
    request = {"model": MODEL_NAME, "messages": [{"role": "user", "content": "hi"}], **body}
    status, answer = server.request("POST", "/v1/chat/completions", request)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param


def test_the_neutral_sampling_fields_vllm_and_sglang_clients_send_are_accepted(server):
    neutral = dict(min_p=0, repetition_penalty=1, presence_penalty=0, frequency_penalty=0)
    plain = server.chat(max_tokens=4, seed=3)
    for top_k in (0, -1):  # vLLM's and SGLang's "no top-k"
        assert server.chat(max_tokens=4, seed=3, top_k=top_k, **neutral)["choices"][0]["token_ids"] == plain["choices"][0]["token_ids"]


def test_malformed_requests_get_errors_and_the_server_keeps_serving(server):
    status, answer = server.request("POST", "/v1/chat/completions", raw=b"{not json")
    assert status == 400 and "JSON" in answer["error"]["message"]
    status, answer = server.request("POST", "/v1/chat/completions", raw=json.dumps([1, 2]).encode())
    assert status == 400
    status, answer = server.request("GET", "/v1/nothing")
    assert status == 404
    assert server.chat(max_tokens=1)["choices"][0]["message"]["role"] == "assistant"


def test_an_unknown_model_is_404_model_not_found(server):
    status, answer = server.request("POST", "/v1/chat/completions",
                                    {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 404 and answer["error"]["code"] == "model_not_found"
    assert server.request("GET", "/v1/models/gpt-4")[0] == 404


def perturbed_copy(checkpoint, out_dir):
    """The default weights plus fixed noise, saved without tokenizer files (as a trainer might)."""
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * p.std() * 0.3)
    model.save_pretrained(out_dir)
    return out_dir


def test_load_checkpoint_swaps_weights_and_a_broken_one_keeps_the_old(server, checkpoint, tmp_path):
    ask = dict(max_tokens=8, temperature=0)
    original = server.chat(**ask)["choices"][0]["token_ids"]
    version = server.request("GET", "/v1/models")[1]["data"][0]["checkpoint"]["version"]
    new_dir = perturbed_copy(checkpoint, tmp_path / "perturbed")
    try:
        status, loaded = server.request("POST", "/v1/load_checkpoint", {"path": str(new_dir)})
        assert status == 200, loaded
        assert loaded["version"] == version + 1 and loaded["path"] == str(new_dir.resolve())
        served = server.request("GET", "/v1/models")[1]["data"][0]["checkpoint"]
        assert {k: served[k] for k in ("path", "version")} == {"path": str(new_dir.resolve()), "version": version + 1}
        assert served["fingerprint"].startswith("ckpt-") and served["fingerprint"].endswith(f"-v{version + 1}")
        after = server.chat(**ask)
        assert after["choices"][0]["token_ids"] != original
        assert after["system_fingerprint"] == served["fingerprint"]

        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "config.json").write_text((checkpoint / "config.json").read_text())
        (broken / "model.safetensors").write_bytes(b"\x00" * 64)
        status, answer = server.request("POST", "/v1/load_checkpoint", {"path": str(broken)})
        assert status == 400 and answer["error"]["code"] == "checkpoint_load_failed"
        status, answer = server.request("POST", "/v1/load_checkpoint", {"path": str(tmp_path / "missing")})
        assert status == 400 and answer["error"]["code"] == "checkpoint_not_found"
        assert server.request("GET", "/v1/models")[1]["data"][0]["checkpoint"]["version"] == version + 1
        assert server.chat(**ask)["choices"][0]["token_ids"] == after["choices"][0]["token_ids"]
    finally:
        status, restored = server.request("POST", "/v1/load_checkpoint", {"path": str(checkpoint)})
    assert status == 200
    assert server.chat(**ask)["choices"][0]["token_ids"] == original


@pytest.mark.parametrize("mask", ["none", "bool", "additive"])
def test_decode_attention_equals_sdpa_for_one_query_token_with_grouped_heads(mask):
    generator = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, length, dim = 3, 6, 2, 11, 8
    query = torch.randn(batch, heads, 1, dim, generator=generator)
    key, value = (torch.randn(batch, kv_heads, length, dim, generator=generator) for _ in range(2))
    attend = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    attend[0, ..., :4] = False  # a left-padded row
    attention_mask = {"none": None, "bool": attend,
                      "additive": torch.zeros(attend.shape).masked_fill(~attend, torch.finfo(torch.float32).min)}[mask]
    module = type("Attention", (), {"num_key_value_groups": heads // kv_heads, "is_causal": True})()
    expected, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=0.3)
    actual, _ = grouped_decode_attention(module, query, key, value, attention_mask, scaling=0.3)
    assert actual.shape == expected.shape == (batch, 1, heads, dim)
    torch.testing.assert_close(actual, expected)


def test_the_growing_cache_holds_what_concatenation_would_across_regrowth_and_row_selection():
    generator = torch.Generator().manual_seed(0)
    layer, keys, values = GrowingLayer(), None, None
    for step in range(GROWTH + 40):  # a prompt of 5, then one token at a time: the buffers regrow
        new_keys, new_values = (torch.randn(3, 2, 5 if step == 0 else 1, 4, generator=generator, dtype=torch.bfloat16)
                                for _ in range(2))
        if step == 100:  # the batch drops its first row and duplicates its last
            layer.batch_select_indices(torch.tensor([1, 2, 2]))
            keys, values = keys[[1, 2, 2]], values[[1, 2, 2]]
        keys = new_keys if keys is None else torch.cat([keys, new_keys], dim=-2)
        values = new_values if values is None else torch.cat([values, new_values], dim=-2)
        got_keys, got_values = layer.update(new_keys, new_values)
    assert layer.get_seq_length() == keys.shape[-2] == GROWTH + 44
    assert torch.equal(got_keys, keys.float()) and torch.equal(got_values, values.float())


def test_packed_linear_layers_compute_what_nn_linear_does_and_tied_weights_stay_plain():
    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"a": torch.nn.Linear(64, 96), "b": torch.nn.Linear(96, 32, bias=False),
                                 "embed": torch.nn.Embedding(32, 64), "head": torch.nn.Linear(64, 32, bias=False)})
    model["head"].weight = model["embed"].weight  # tied, as many small models' output layers are
    a, b = model["a"].weight.clone(), model["b"].weight.clone()
    bias = model["a"].bias.clone()
    assert can_pack(model) and pack_linears(model) == 2
    assert type(model["a"]) is PackedLinear and type(model["head"]) is torch.nn.Linear
    assert model["a"].in_features == 64 and model["a"].out_features == 96
    x = torch.randn(3, 5, 64)
    with torch.inference_mode():
        for rows in (x, x[:, -1], x[:1, ::2]):  # a prompt, a decode step's rows, a strided view
            expected = torch.nn.functional.linear(torch.nn.functional.linear(rows, a, bias), b)
            torch.testing.assert_close(model["b"](model["a"](rows)), expected, rtol=1e-5, atol=1e-5)
