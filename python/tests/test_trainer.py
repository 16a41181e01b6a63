"""GRPO trainer: the loss against hand-computed values, and real update steps on a tiny random Llama
model built here (no downloads). `build_tiny_model` is also used by the TypeScript launcher tests."""
import json
import math
import re
from contextlib import nullcontext
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import dtypes  # noqa: E402
import trainer  # noqa: E402
from trainer import TrainConfig, batch_tensors, grpo_token_losses, lr_at  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(path, seed: int = 0) -> Path:
    """A 2-layer Llama (~30k parameters) with a byte-level BPE tokenizer and a chat template, saved
    like any Hugging Face checkpoint, so the trainer and the model server load it unchanged."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\n", "Write a Python function."] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                        bos_token="<|im_start|>", chat_template=CHAT_TEMPLATE)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------------------
# The loss against hand-computed values


def close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype))


def losses(logp, old, ref, adv, **overrides):
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return grpo_token_losses(t(logp), t(old), t(ref), t(adv), TrainConfig(**overrides))


def test_ratio_is_clipped_on_both_sides_by_the_sign_of_the_advantage():
    ln = math.log
    # Columns: ratio 1.5 and 0.5; rows: advantage +1 and -1. Reference = policy, so the KL is 0.
    logp = [[ln(1.5), ln(0.5)], [ln(1.5), ln(0.5)]]
    total, pg, kl, ratio, clipped = losses(logp, [[0.0, 0.0], [0.0, 0.0]], logp, [1.0, -1.0])
    # A > 0: the gain stops at 1 + 0.28 when the ratio rises; a falling ratio is not clipped.
    # A < 0: a ratio below 1 - 0.2 is clipped; a rising one is not (the pessimistic max).
    close(pg, [[-1.28, -0.5], [1.5, 0.8]])
    assert clipped.tolist() == [[True, False], [False, True]]
    close(ratio, [[1.5, 0.5], [1.5, 0.5]])
    close(kl, [[0.0, 0.0], [0.0, 0.0]])
    close(total, pg.tolist())


def test_kl_is_the_k3_estimate_weighted_by_its_coefficient():
    # k3 = exp(ref - logp) - (ref - logp) - 1: for d = ref - logp = 0.5, e^0.5 - 1.5; for d = -1, e^-1.
    logp, ref = [[-1.0, -2.0]], [[-0.5, -3.0]]
    total, pg, kl, _, _ = losses(logp, logp, ref, [0.0], kl_coef=0.001)
    expected = [math.exp(0.5) - 1.5, math.exp(-1.0)]
    close(kl, [expected])
    close(total, [[0.001 * k for k in expected]])
    assert pg.abs().sum().item() == 0


def test_kl_per_token_is_clamped():
    _, _, kl, _, _ = losses([[-20.0]], [[-20.0]], [[-1.0]], [0.0])
    assert kl.item() == 10.0


def test_the_loss_mask_covers_exactly_the_response_tokens():
    ids, attention, mask, adv = batch_tensors([([5, 6, 7], [8, 9], 1.0), ([5], [8, 9, 10], -1.0)], "cpu")
    assert ids.tolist() == [[5, 6, 7, 8, 9], [5, 8, 9, 10, 0]]
    assert attention.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    # Position j predicts token j + 1: row 0 predicts 8, 9 from positions 2, 3; row 1 predicts 8, 9, 10.
    assert mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert adv.tolist() == [1.0, -1.0]


def test_learning_rate_warms_up_on_a_half_cosine_and_then_holds():
    cfg = TrainConfig(learning_rate=1.0, warmup_steps=3)
    assert [lr_at(s, cfg) for s in range(5)] == pytest.approx([0.5 * (1 - math.cos(math.pi * k / 4)) for k in (1, 2, 3)] + [1.0, 1.0])
    decaying = TrainConfig(learning_rate=1.0, warmup_steps=0, decay_steps=4)
    assert [lr_at(s, decaying) for s in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])


# --------------------------------------------------------------------------------------------------
# Update steps on a tiny model

# Distinct token ids, so raising one response cannot raise the other through shared tokens.
PROMPT = [1, 40, 41, 42, 43]
GOOD = [60, 61, 62, 63, 2]
BAD = [80, 81, 82, 83, 2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def run_job(tmp_path, policy, rollouts, reference=None, optimizer_state=None, name="out", **config) -> tuple[Path, dict]:
    out = tmp_path / name
    job = {"role": "code", "policy": str(policy), "reference": str(reference or policy), "optimizerState": optimizer_state,
           "output": str(out), "config": {"learningRate": 1e-3, "warmupSteps": 0, "threads": 1, **config}, "rollouts": rollouts}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(job))
    return out, trainer.main([str(path)])


def rollout(response, advantage, prompt=PROMPT):
    return {"promptTokenIds": prompt, "responseTokenIds": response, "advantage": advantage}


def sequence_logprob(checkpoint, prompt, response, adapter=None) -> float:
    """Under the checkpoint, or base + adapter loaded the way any peft user (or vLLM) loads the trainer's output."""
    model = trainer.load_model(str(checkpoint), torch.device("cpu"))
    if adapter:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter))
    ids, attention, mask, _ = batch_tensors([(prompt, response, 0.0)], "cpu")
    with torch.no_grad():
        return (trainer.token_logprobs(model, ids, attention, nullcontext) * mask).sum().item()


def weights(checkpoint, file="model.safetensors") -> dict:
    from safetensors.torch import load_file
    return load_file(str(Path(checkpoint) / file))


def test_one_step_raises_positive_and_lowers_negative_advantage_responses(tiny, tmp_path):
    out, metrics = run_job(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD, -1.0)])
    assert sequence_logprob(out, PROMPT, GOOD) > sequence_logprob(tiny, PROMPT, GOOD)
    assert sequence_logprob(out, PROMPT, BAD) < sequence_logprob(tiny, PROMPT, BAD)
    # One epoch, one optimizer step: the ratio is exactly 1, nothing is clipped, no KL yet.
    assert metrics["steps"] == 1 and metrics["ratio_mean"] == pytest.approx(1.0) and metrics["clip_fraction"] == 0
    assert metrics["kl"] == 0 and metrics["response_tokens"] == 10 and metrics["grad_norm"] > 0


def test_the_checkpoint_records_the_probe_after_and_before_the_update(tiny, tmp_path):
    """probe.json: the greedy completion of the fixed prompt under the saved weights with the
    log-prob of each token, recomputed here from the checkpoint as a server would load it."""
    import probe
    out, _ = run_job(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD, -1.0)], learningRate=1e-2)
    doc = json.loads((out / "probe.json").read_text())
    assert doc["format"] == "code-a1-probe-v1" and doc["messages"] == probe.MESSAGES
    for weights_dir, which in ((out, "current"), (tiny, "previous")):
        model = trainer.load_model(str(weights_dir), torch.device("cpu"))
        tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(str(tiny))
        expected = probe.greedy(model, tokenizer, "cpu", nullcontext)
        assert doc[which]["tokenIds"] == expected["tokenIds"] and 0 < len(expected["tokenIds"]) <= probe.MAX_TOKENS
        assert doc[which]["logprobs"] == pytest.approx(expected["logprobs"], abs=1e-5)
        assert all(lp <= 0 for lp in doc[which]["logprobs"])
    # A large step moves the probe: the two records differ, which is what lets a client tell them apart.
    assert doc["current"]["logprobs"] != pytest.approx(doc["previous"]["logprobs"], abs=1e-3) or \
        doc["current"]["tokenIds"] != doc["previous"]["tokenIds"]


def recomputed_greedy(model, tokenizer):
    """The probe's definition, step by step: each token the argmax of a fresh pass without a cache."""
    import probe
    ids, stops, tokens, logprobs = probe.prompt_ids(tokenizer), probe.stop_ids(model, tokenizer), [], []
    with torch.no_grad():
        for _ in range(probe.MAX_TOKENS):
            lp = torch.log_softmax(model(input_ids=torch.tensor([ids + tokens]), use_cache=False).logits[0, -1].float(), -1)
            tokens.append(int(lp.argmax()))
            logprobs.append(float(lp[tokens[-1]]))
            if tokens[-1] in stops:
                break
    return tokens, logprobs


@pytest.mark.parametrize("cache_disagrees", [False, True])
def test_the_probe_is_the_greedy_answer_recomputed_without_a_cache(checkpoint, monkeypatch, cache_disagrees):
    """The probe decodes with a cache and checks in one pass without; where the two disagree (forced
    here), it answers what recomputing every step gives."""
    import probe
    model = trainer.load_model(str(checkpoint), torch.device("cpu")).eval()
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(str(checkpoint))
    if cache_disagrees:
        monkeypatch.setattr(probe, "cached_greedy", lambda *args: [0] * probe.MAX_TOKENS)
    tokens, logprobs = recomputed_greedy(model, tokenizer)
    got = probe.greedy(model, tokenizer, "cpu", nullcontext)
    assert got["tokenIds"] == tokens and len(set(tokens)) > 1
    assert got["logprobs"] == pytest.approx(logprobs, abs=1e-4)


def test_zero_advantages_with_the_reference_as_policy_change_nothing_but_weight_decay(tiny, tmp_path):
    rollouts = [rollout(GOOD, 0.0), rollout(BAD, 0.0)]
    out, _ = run_job(tmp_path, tiny, rollouts, weightDecay=0.0)
    base = weights(tiny)
    assert all(torch.equal(base[k], v) for k, v in weights(out).items())
    # AdamW's decoupled decay still shrinks every weight by lr * weight_decay.
    decayed, _ = run_job(tmp_path, tiny, rollouts, name="decayed", weightDecay=0.1)
    assert all(torch.allclose(base[k] * (1 - 1e-3 * 0.1), v) for k, v in weights(decayed).items())


def test_zero_advantages_pull_a_drifted_policy_toward_the_reference(tiny, tmp_path):
    from transformers import AutoModelForCausalLM
    drifted = tmp_path / "drifted"
    model = AutoModelForCausalLM.from_pretrained(tiny)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(drifted)
    rollouts = [rollout(GOOD, 0.0), rollout(BAD, 0.0)]
    first, m1 = run_job(tmp_path, drifted, rollouts, reference=tiny, name="first", weightDecay=0.0, klCoef=1.0)
    _, m2 = run_job(tmp_path, first, rollouts, reference=tiny, name="second", weightDecay=0.0, klCoef=1.0)
    assert m1["kl"] > 0 and m2["kl"] < m1["kl"]
    assert m1["pg_loss"] == 0


def test_micro_batches_accumulate_to_the_same_token_mean_step(tiny, tmp_path):
    rollouts = [rollout(GOOD, 1.0), rollout(BAD[:2], -1.0), rollout(GOOD[:3], 0.5)]
    whole, _ = run_job(tmp_path, tiny, rollouts, name="whole", microBatchSize=4)
    split, _ = run_job(tmp_path, tiny, rollouts, name="split", microBatchSize=1)
    a, b = weights(whole), weights(split)
    # The output layer runs on each micro-batch's response positions: different matmul shapes round
    # differently (measured 2.6e-7 on a step of 1.1e-3); a wrong weighting of micro-batches moves
    # weights by the order of the step.
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_optimizer_state_continues_across_runs(tiny, tmp_path):
    rollouts = [rollout(GOOD, 1.0), rollout(BAD, -1.0)]
    first, m1 = run_job(tmp_path, tiny, rollouts, name="first", warmupSteps=10)
    state = str(first / "optimizer.safetensors")
    second, m2 = run_job(tmp_path, first, rollouts, optimizer_state=state, name="second", warmupSteps=10)
    again, _ = run_job(tmp_path, first, rollouts, optimizer_state=state, name="again", warmupSteps=10)
    fresh, m3 = run_job(tmp_path, first, rollouts, name="fresh", warmupSteps=10)
    # The warm-up goes on from step 1, and the same state resumes to the same bits.
    assert (m1["steps"], m2["steps"], m3["steps"]) == (1, 2, 1)
    assert m2["lr"] == pytest.approx(lr_at(1, TrainConfig(learning_rate=1e-3, warmup_steps=10)))
    assert all(torch.equal(v, weights(again)[k]) for k, v in weights(second).items())
    assert any(not torch.equal(v, weights(fresh)[k]) for k, v in weights(second).items())
    saved = json.loads((second / "trainer.json").read_text())
    assert saved["step"] == 2 and saved["config"]["warmup_steps"] == 10


def test_rollouts_without_token_ids_are_tokenised_with_the_chat_template(tiny, tmp_path):
    text = {"messages": [{"role": "user", "content": "Write a Python function."}],
            "response": "def add(a, b):\n    return a + b\n", "finishReason": "stop", "advantage": 1.0}
    _, metrics = run_job(tmp_path, tiny, [text, rollout(BAD, -1.0)])
    assert metrics["retokenized"] == 1 and metrics["rollouts"] == 2


def test_the_command_line_writes_a_checkpoint_and_json_progress_lines(tiny, tmp_path):
    job = {"role": "test", "policy": str(tiny), "reference": str(tiny), "optimizerState": None, "output": str(tmp_path / "out"),
           "config": {"threads": 1}, "rollouts": [rollout(GOOD, 1.0), rollout(BAD, -1.0)]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run([sys.executable, str(PYTHON_DIR / "trainer.py"), str(tmp_path / "job.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "progress"] == ["start", "phase", "phase", "step", "done"]
    assert {"phase": "train", "epoch": 0, "done": 1, "total": 1} in [{k: e[k] for k in e if k != "event"} for e in events if e["event"] == "progress"]
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer.json", "metrics.json"} <= files
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == events[-1]["metrics"]


def test_an_unusable_job_exits_with_status_65(tmp_path):
    (tmp_path / "job.json").write_text(json.dumps({"policy": "x", "reference": "x", "output": "y", "rollouts": [],
                                                   "config": {"learningRat": 1e-6}}))
    run = subprocess.run([sys.executable, str(PYTHON_DIR / "trainer.py"), str(tmp_path / "job.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 65 and "learning_rat" in run.stderr


# --------------------------------------------------------------------------------------------------
# LoRA: an adapter on the frozen base

LORA = {"rank": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj", "up_proj", "down_proj"]}


def run_lora(tmp_path, base, rollouts, adapter=None, optimizer_state=None, name="out", **config):
    out = tmp_path / name
    job = {"role": "code", "policy": str(base), "reference": str(base), "adapter": str(adapter) if adapter else None,
           "optimizerState": optimizer_state, "output": str(out), "rollouts": rollouts,
           "config": {"learningRate": 1e-2, "warmupSteps": 0, "threads": 1, "lora": LORA, **config}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(job))
    return out, trainer.main([str(path)])


def test_a_lora_step_raises_positive_and_lowers_negative_advantage_responses(tiny, tmp_path):
    out, metrics = run_lora(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD, -1.0)])
    assert sequence_logprob(tiny, PROMPT, GOOD, adapter=out) > sequence_logprob(tiny, PROMPT, GOOD)
    assert sequence_logprob(tiny, PROMPT, BAD, adapter=out) < sequence_logprob(tiny, PROMPT, BAD)
    # The output is the adapter alone: no full weights, no tokenizer.
    assert {p.name for p in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors",
                                               "trainer.json", "probe.json", "metrics.json"}
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4
    assert metrics["lora_rank"] == 4
    # q_proj 32 -> 32, v_proj 32 -> 16, up_proj 32 -> 64, down_proj 64 -> 32; two layers, r * (in + out) each.
    assert metrics["trainable_parameters"] == 2 * 4 * ((32 + 32) + (32 + 16) + (32 + 64) + (64 + 32))


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """The dtype rule as on the AVX2-only VM, on any CPU: oneDNN capped below bf16 instructions."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    if torch.cuda.is_available():
        pytest.skip("the trainer trains on the GPU, where auto is bfloat16")


def lora_base_dtype(monkeypatch) -> list[torch.dtype]:
    """The dtype of the base the trainer loads for each run, as it loads it."""
    seen = []
    load = trainer.load_lora_policy

    def spy(*args, **kwargs):
        model = load(*args, **kwargs)
        seen.append(model.get_base_model().get_input_embeddings().weight.dtype)
        return model

    monkeypatch.setattr(trainer, "load_lora_policy", spy)
    return seen


@pytest.mark.parametrize("config, expected", [
    ({}, torch.float32),  # dtype auto by default: bf16 would only be emulated
    ({"dtype": "auto"}, torch.float32),
    ({"dtype": "bfloat16"}, torch.bfloat16),
    ({"loraBaseDtype": "bfloat16"}, torch.bfloat16),  # job files written before `dtype`
    ({"dtype": "float32", "loraBaseDtype": "float32"}, torch.float32),
])
def test_on_a_cpu_without_bf16_the_lora_base_is_float32_unless_bfloat16_is_asked(tiny, tmp_path, monkeypatch, cpu_without_bf16, config, expected):
    seen = lora_base_dtype(monkeypatch)
    out, metrics = run_lora(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD, -1.0)], **config)
    name = dtypes.name_of(expected)
    assert seen == [expected]
    assert metrics["base_dtype"] == metrics["compute_dtype"] == name
    assert json.loads((out / "probe.json").read_text())["dtype"] == name


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA full weights autocast to bf16")
def test_full_weights_keep_float32_master_weights_and_compute_in_float32_on_cpu(tiny, tmp_path):
    _, metrics = run_job(tmp_path, tiny, [rollout(GOOD, 1.0)], dtype="bfloat16")
    assert metrics["base_dtype"] == metrics["compute_dtype"] == "float32"


@pytest.mark.parametrize("config, message", [
    ({"dtype": "float16"}, "dtype 'float16' is not auto, bfloat16 or float32"),
    ({"dtype": "float32", "loraBaseDtype": "bfloat16"}, "lora_base_dtype ('bfloat16') and dtype ('float32') disagree"),
])
def test_a_dtype_the_trainer_does_not_take_is_rejected(config, message):
    with pytest.raises((AssertionError, ValueError), match=re.escape(message)):
        trainer.parse_config(config)


def test_a_fresh_adapter_starts_exactly_at_the_base_so_the_first_kl_is_zero(tiny, tmp_path):
    _, metrics = run_lora(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD[:3], -0.5)], klCoef=1.0)
    assert metrics["kl"] == 0 and metrics["ratio_mean"] == 1.0 and metrics["clip_fraction"] == 0
    assert all(math.isfinite(metrics[k]) for k in ("loss", "pg_loss", "grad_norm", "lr")) and metrics["grad_norm"] > 0
    assert metrics["steps"] == 1 and metrics["response_tokens"] == 8


def test_a_lora_adapter_and_its_optimizer_state_continue_across_iterations(tiny, tmp_path):
    # Iteration 0 moves the adapter away from the base, so the KL to it has a gradient afterwards.
    start, _ = run_lora(tmp_path, tiny, [rollout(GOOD, 1.0), rollout(BAD, -1.0)], name="start")
    # With zero advantages the loss is the KL to the base alone, which does not depend on the old
    # log-probs: two iterations of one step each must then equal one run of two steps (two epochs).
    rollouts = [rollout(GOOD, 0.0), rollout(BAD, 0.0)]
    kw = dict(klCoef=1.0, warmupSteps=5)
    state = str(start / "optimizer.safetensors")
    one, m1 = run_lora(tmp_path, tiny, rollouts, adapter=start, optimizer_state=state, name="one", **kw)
    two, m2 = run_lora(tmp_path, tiny, rollouts, adapter=one, optimizer_state=str(one / "optimizer.safetensors"), name="two", **kw)
    both, m12 = run_lora(tmp_path, tiny, rollouts, adapter=start, optimizer_state=state, name="both", ppoEpochs=2, **kw)
    fresh, _ = run_lora(tmp_path, tiny, rollouts, adapter=one, name="fresh", **kw)
    assert (m1["steps"], m2["steps"], m12["steps"]) == (2, 3, 3) and m1["kl"] > 0
    assert m2["lr"] == pytest.approx(lr_at(2, TrainConfig(learning_rate=1e-2, warmup_steps=5)))
    adapter, state = "adapter_model.safetensors", "optimizer.safetensors"
    final = weights(two, adapter)
    assert all(torch.equal(v, weights(both, adapter)[k]) for k, v in final.items())
    assert any(not torch.allclose(v, weights(fresh, adapter)[k], rtol=0, atol=1e-6) for k, v in final.items())
    saved = weights(two, state)
    assert all("lora_A" in k or "lora_B" in k for k in saved) and len(saved) == 2 * len(final)
    assert all(torch.equal(v, weights(both, state)[k]) for k, v in saved.items())


@pytest.mark.parametrize("change, message", [
    ({"lora": {**LORA, "targetModules": ["q_proj", "c_attn"]}}, "c_attn"),
    ({"lora": {**LORA, "rank": 0}}, "lora.rank"),
    ({"lora": {**LORA, "ranks": 4}}, "ranks"),
    ({"reference": "other"}, "reference must be the base"),
    ({"lora": None, "adapter": "some/adapter"}, "names an adapter but its config has no lora"),
])
def test_an_unusable_lora_job_exits_with_status_65(tiny, tmp_path, change, message):
    job = {"role": "code", "policy": str(tiny), "reference": str(tiny), "adapter": None, "optimizerState": None,
           "output": str(tmp_path / "out"), "rollouts": [rollout(GOOD, 1.0)],
           "config": {"threads": 1, "lora": change.pop("lora", LORA)}, **change}
    (tmp_path / "job.json").write_text(json.dumps(job))
    run = subprocess.run([sys.executable, str(PYTHON_DIR / "trainer.py"), str(tmp_path / "job.json")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 65 and message in run.stderr, run.stderr
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("lora", [False, True])
def test_skipping_the_old_logprob_pass_of_a_single_step_update_leaves_the_update_unchanged(tiny, tmp_path, lora):
    """One epoch of one optimizer step: the old log-probs are the training pass's own, so their pass is
    skipped; the same job with the pass forced must give the same loss, KL and weights."""
    rollouts = [rollout(GOOD, 1.0), rollout(BAD, -1.0), rollout(GOOD[:3], 0.5)]
    if lora:
        run = lambda name, **c: run_lora(tmp_path, tiny, rollouts, name=name, **c)  # noqa: E731
        weight_file = "adapter_model.safetensors"
    else:
        reference = build_tiny_model(tmp_path / "reference", seed=1)  # another reference: its pass cannot stand in
        run = lambda name, **c: run_job(tmp_path, tiny, rollouts, reference=reference, name=name, klCoef=0.1, **c)  # noqa: E731
        weight_file = "model.safetensors"
    skipped, m_skip = run("skipped")
    forced, m_forced = run("forced", recomputeOldLogprobs=True)
    assert (m_skip["old_logprob_pass"], m_forced["old_logprob_pass"]) == (0, 1)
    for key in ("loss", "pg_loss", "kl", "grad_norm"):
        assert m_skip[key] == pytest.approx(m_forced[key], rel=1e-5, abs=1e-7), key
    a, b = weights(skipped, weight_file), weights(forced, weight_file)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("lora", [False, True])
def test_without_a_kl_term_the_reference_pass_is_skipped_and_the_update_unchanged(tiny, tmp_path, lora):
    """klCoef 0: the reference log-probs weigh nothing, so their pass is skipped (KL reported as null);
    the same job with the pass run (measureKl) must give the same loss and weights, and a KL."""
    rollouts = [rollout(GOOD, 1.0), rollout(BAD, -1.0)]
    if lora:
        run = lambda name, **c: run_lora(tmp_path, tiny, rollouts, name=name, klCoef=0, **c)  # noqa: E731
        weight_file = "adapter_model.safetensors"
    else:
        reference = build_tiny_model(tmp_path / "reference", seed=1)
        run = lambda name, **c: run_job(tmp_path, tiny, rollouts, reference=reference, name=name, klCoef=0, **c)  # noqa: E731
        weight_file = "model.safetensors"
    skipped, m_skip = run("skipped")
    measured, m_measured = run("measured", measureKl=True)
    assert (m_skip["reference_pass"], m_measured["reference_pass"]) == (0, 1)
    assert m_skip["kl"] is None and isinstance(m_measured["kl"], float)
    if not lora:
        assert m_measured["kl"] > 0, "another reference: the KL is measured, not assumed"
    for key in ("loss", "pg_loss", "grad_norm"):
        assert m_skip[key] == pytest.approx(m_measured[key], rel=1e-5, abs=1e-7), key
    a, b = weights(skipped, weight_file), weights(measured, weight_file)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_several_optimizer_steps_keep_the_old_logprob_pass(tiny, tmp_path):
    rollouts = [rollout(GOOD, 1.0), rollout(BAD, -1.0)]
    _, metrics = run_job(tmp_path, tiny, rollouts, reference=build_tiny_model(tmp_path / "reference", seed=1),
                         miniBatchSize=1, microBatchSize=1)
    assert metrics["old_logprob_pass"] == 1
