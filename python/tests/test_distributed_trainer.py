"""The trainer on two ranks (torchrun, gloo on CPU) against the same trainer in one process, on a tiny
random Llama built here: full weights under FSDP2, LoRA under DDP and with a sharded base, uneven
slices of the rollouts, a resumed optimizer, the efficiency options; then the command line: progress
from rank 0 only, a crashed rank, a rejected job, torchrun killed.

Tolerance. The ranks sum partial gradients of other micro-batches, in another order and with other
padding widths, so float32 sums differ in their last bits. Adam divides each gradient element by
its magnitude, so an element that is a sum of cancelling terms carries a relative error of up to
about 1e-3 into its update: the weights agree within 1e-5 absolute, a thousandth of the learning
rate 1e-2 (measured: at most 1e-6), the metrics within 1e-5 relative. A lost share of the rollouts,
a missed micro-batch or a wrong token count moves weights by about the learning rate. Adam's update
does not change when every gradient is scaled alike, so an averaging reduction (half the sum)
shows in the gradient norm, which is compared too. LoRA cases that batch rollouts differently from
one process hold the base in float32: a bf16 base rounds each product to 8 bits, differently for
each batch shape (measured 4e-5).
"""
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_trainer import BAD, GOOD, PROMPT, build_tiny_model, rollout

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR))
import trainer  # noqa: E402

WEIGHTS_ATOL = 1e-5
METRICS_REL = 1e-5
TORCHRUN = [sys.executable, str(PYTHON_DIR / "torchrun.py"), "--standalone", "--nproc_per_node=2"]
LORA = {"rank": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["q_proj", "v_proj", "up_proj", "down_proj"]}
ROLLOUTS = [rollout(GOOD, 1.0), rollout(BAD[:3], -1.0, prompt=PROMPT[:3]), rollout(GOOD[:2], 0.5), rollout(BAD, -0.5, prompt=PROMPT[:4])]
EFFICIENT = {"pack": True, "microBatchTokens": 12, "gradientCheckpointing": True, "attnImplementation": "eager"}

# name: (config, rollouts, the case whose output this one continues (its policy or adapter and optimizer state))
CASES = {
    # Two optimizer steps (mini-batches of 2 and 1 rollouts: in the second, rank 1 has none), the
    # gradient clipped in both, a KL to a separate (sharded) reference.
    "full": ({"microBatchSize": 1, "miniBatchSize": 2, "gradClip": 0.05, "klCoef": 0.1}, ROLLOUTS[:3], None),
    "resumed": ({"microBatchSize": 2, "warmupSteps": 5, "klCoef": 0.1}, ROLLOUTS, "full"),
    "lora-one": ({"lora": LORA}, ROLLOUTS[:1], None),  # fewer rollouts than ranks
    "lora": ({"lora": LORA, "dtype": "float32", "microBatchSize": 2, "warmupSteps": 5}, ROLLOUTS[:3], "lora-one"),
    # bf16 base and fp32 adapter in one FSDP2 unit; micro-batches of one rollout, as in one process.
    "lora-fsdp": ({"lora": LORA, "loraFsdp": True, "microBatchSize": 1, "miniBatchSize": 2, "warmupSteps": 5}, ROLLOUTS[:3], "lora-one"),
    "efficient": ({**EFFICIENT, "klCoef": 0.1}, ROLLOUTS, None),
}


def job_file(root: Path, tiny: Path, drifted: Path, name: str, ranks: int) -> Path:
    config, rollouts, after = CASES[name]
    lora = "lora" in config
    before = root / f"{after}-{ranks}" if after else None
    job = {"role": "code", "policy": str(tiny if lora or not before else before), "reference": str(tiny if lora else drifted),
           "adapter": str(before) if lora and before else None,
           "optimizerState": str(before / "optimizer.safetensors") if before else None,
           "output": str(root / f"{name}-{ranks}"), "rollouts": rollouts,
           "config": {"learningRate": 1e-2, "warmupSteps": 0, "threads": 1, **config}}
    if ranks == 1:  # one process: the same update without the options that only change how it is computed
        job["config"] = {k: v for k, v in job["config"].items() if k not in EFFICIENT and k != "loraFsdp"}
    path = root / f"{name}-{ranks}.json"
    path.write_text(json.dumps(job))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Every case in one process, then on two ranks (one torchrun for all of them)."""
    root = tmp_path_factory.mktemp("distributed")
    tiny = build_tiny_model(root / "tiny")
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(tiny)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(root / "drifted")
    for name in CASES:
        trainer.main([str(job_file(root, tiny, root / "drifted", name, 1))])
    jobs = [str(job_file(root, tiny, root / "drifted", name, 2)) for name in CASES]
    run = subprocess.run([*TORCHRUN, str(PYTHON_DIR / "tests" / "rank_jobs.py"), *jobs], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return root


def assert_same_files(one: Path, two: Path, weights: str) -> None:
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    for file in (weights, "optimizer.safetensors"):
        a, b = load_file(str(one / file)), load_file(str(two / file))
        assert sorted(a) == sorted(b), f"{file}: other tensors"
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=WEIGHTS_ATOL, msg=lambda m: f"{file} {k}: {m}")


def assert_same_metrics(one: Path, two: Path) -> dict:
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    for key in ("loss", "pg_loss", "kl", "clip_fraction", "ratio_mean", "grad_norm", "lr"):
        assert b[key] == pytest.approx(a[key], rel=METRICS_REL, abs=1e-9), key
    for key in ("steps", "steps_this_run", "skipped_steps", "rollouts", "response_tokens", "tokens", "trainable_parameters"):
        assert b[key] == a[key], key
    assert (a["world_size"], b["world_size"]) == (1, 2)
    return b


def assert_same_probe(one: Path, two: Path) -> None:
    a, b = (json.loads((d / "probe.json").read_text()) for d in (one, two))
    for which in ("current", "previous"):
        assert b[which]["tokenIds"] == a[which]["tokenIds"]
        assert b[which]["logprobs"] == pytest.approx(a[which]["logprobs"], abs=1e-5)


def test_full_weights_sharded_with_fsdp2_equal_one_process_with_an_odd_number_of_rollouts(runs):
    assert_same_files(runs / "full-1", runs / "full-2", "model.safetensors")
    metrics = assert_same_metrics(runs / "full-1", runs / "full-2")
    assert metrics["steps"] == 2 and metrics["kl"] > 0 and metrics["grad_norm"] > 0.05, "the gradient was clipped"
    assert_same_probe(runs / "full-1", runs / "full-2")
    assert (runs / "full-1" / "config.json").read_text() == (runs / "full-2" / "config.json").read_text()


def test_a_sharded_optimizer_state_resumes_as_in_one_process(runs):
    assert_same_files(runs / "resumed-1", runs / "resumed-2", "model.safetensors")
    metrics = assert_same_metrics(runs / "resumed-1", runs / "resumed-2")
    assert metrics["steps"] == 3 and metrics["lr"] == pytest.approx(trainer.lr_at(2, trainer.TrainConfig(learning_rate=1e-2, warmup_steps=5)))


def test_one_process_resumes_what_two_ranks_saved(runs, tmp_path):
    """The optimizer state holds whole tensors, so another number of ranks can continue it."""
    job = json.loads((runs / "resumed-1.json").read_text())
    job.update(policy=str(runs / "full-2"), optimizerState=str(runs / "full-2" / "optimizer.safetensors"), output=str(tmp_path / "out"))
    (tmp_path / "job.json").write_text(json.dumps(job))
    trainer.main([str(tmp_path / "job.json")])
    assert_same_files(runs / "resumed-1", tmp_path / "out", "model.safetensors")


def test_lora_under_ddp_equals_one_process_even_with_fewer_rollouts_than_ranks(runs):
    for name in ("lora-one", "lora"):
        assert_same_files(runs / f"{name}-1", runs / f"{name}-2", "adapter_model.safetensors")
        assert_same_metrics(runs / f"{name}-1", runs / f"{name}-2")
        assert_same_probe(runs / f"{name}-1", runs / f"{name}-2")
    assert json.loads((runs / "lora-2" / "metrics.json").read_text())["steps"] == 2


def test_lora_with_the_base_sharded_by_fsdp2_equals_one_process(runs):
    assert_same_files(runs / "lora-fsdp-1", runs / "lora-fsdp-2", "adapter_model.safetensors")
    assert_same_metrics(runs / "lora-fsdp-1", runs / "lora-fsdp-2")


def test_packing_token_budgets_and_activation_checkpointing_on_two_ranks_give_the_same_update(runs):
    assert_same_files(runs / "efficient-1", runs / "efficient-2", "model.safetensors")
    assert_same_metrics(runs / "efficient-1", runs / "efficient-2")


def test_the_efficiency_options_give_the_same_update_in_one_process(runs, tmp_path):
    job = json.loads((runs / "efficient-2.json").read_text())
    job["output"] = str(tmp_path / "out")
    (tmp_path / "job.json").write_text(json.dumps(job))
    trainer.main([str(tmp_path / "job.json")])
    assert_same_files(runs / "efficient-1", tmp_path / "out", "model.safetensors")


# --------------------------------------------------------------------------------------------------
# The schedule: which rank trains on what


def test_each_rank_takes_a_fixed_slice_of_each_mini_batch_and_pads_to_the_busiest_rank():
    rows = [([1], [i] * (i + 1), 1.0) for i in range(5)]
    cfg = trainer.TrainConfig(micro_batch_size=1, mini_batch_size=3)
    r0, r1 = (trainer.rank_schedule(rows, cfg, r, 2) for r in (0, 1))
    # Mini-batches {0, 1, 2} and {3, 4}: rank 0 takes the 1st and 3rd of each, rank 1 the 2nd.
    assert r0 == [[[rows[0]], [rows[2]]], [[rows[3]]]]
    assert r1 == [[[rows[1]], []], [[rows[4]]]]
    # With more ranks than rollouts the extra ranks run only empty passes, as many as the others.
    assert trainer.rank_schedule(rows[:1], trainer.TrainConfig(), 2, 3) == [[[]]]
    # One rank: the micro-batches in order, as the trainer always made them.
    assert trainer.rank_schedule(rows, trainer.TrainConfig(micro_batch_size=2), 0, 1) == [[rows[0:2], rows[2:4], rows[4:5]]]


def test_a_token_budget_bounds_each_micro_batch_padded_or_packed():
    rows = [([1, 2], [3] * n, 1.0) for n in (2, 6, 1, 1, 9)]  # 4, 8, 3, 3 and 11 tokens
    padded = trainer.split_micro(rows, trainer.TrainConfig(micro_batch_tokens=16))
    packed = trainer.split_micro(rows, trainer.TrainConfig(micro_batch_tokens=16, pack=True))
    assert [len(b) for b in padded] == [2, 2, 1]  # 2 x width 8; 2 x width 3; 11 (3 x 11 would exceed 16)
    assert [len(b) for b in packed] == [3, 2]  # 4 + 8 + 3; 3 + 11
    assert sum(padded, []) == rows and sum(packed, []) == rows


@pytest.mark.parametrize("pack", [False, True])
def test_log_probs_of_response_positions_only_are_those_of_the_full_pass_with_the_same_gradient(tmp_path, pack):
    """The training and frozen passes compute logits only where a response token is predicted."""
    model = trainer.load_model(str(build_tiny_model(tmp_path / "tiny")), torch.device("cpu"))
    rows = [(PROMPT, GOOD, 1.0), (PROMPT[:3], BAD[:2], -1.0), (PROMPT[:5], BAD, 0.5)]
    ids, attention, positions, mask, _ = trainer.model_batch(rows, "cpu", pack)
    assert 0 < mask.sum() < mask.numel()  # prompt positions and padding to skip

    def pass_(response_mask):
        model.zero_grad()
        logp = trainer.token_logprobs(model, ids, attention, nullcontext, positions, response_mask)
        (logp * mask).sum().backward()
        return logp.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    (full, full_grads), (kept, kept_grads) = pass_(None), pass_(mask)
    assert kept.shape == full.shape
    torch.testing.assert_close(kept[mask.bool()], full[mask.bool()], rtol=0, atol=1e-6)
    assert not kept[~mask.bool().any(0).expand_as(mask)].any()  # nothing computed where no row has a response
    assert len(kept_grads) == len(full_grads) > 0
    for a, b in zip(kept_grads, full_grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_packed_row_gives_each_sequence_the_log_probs_of_its_padded_row(tmp_path):
    tiny = build_tiny_model(tmp_path / "tiny")
    model = trainer.load_model(str(tiny), torch.device("cpu"))
    rows = [(PROMPT, GOOD, 1.0), (PROMPT[:3], BAD[:2], -1.0)]
    ids, attention, mask, _ = trainer.batch_tensors(rows, "cpu")
    packed_ids, positions, packed_mask, advantages = trainer.packed_tensors(rows, "cpu")
    with torch.no_grad():
        padded = trainer.token_logprobs(model, ids, attention, nullcontext)
        packed = trainer.token_logprobs(model, packed_ids, None, nullcontext, positions)
    torch.testing.assert_close(packed[packed_mask.bool()], padded[mask.bool()], rtol=0, atol=1e-6)
    assert advantages[packed_mask.bool()].tolist() == [1.0] * len(GOOD) + [-1.0] * 2


# --------------------------------------------------------------------------------------------------
# The command line under torchrun


def cli_job(tmp_path, tiny, **config) -> Path:
    job = {"role": "code", "policy": str(tiny), "reference": str(tiny), "optimizerState": None, "output": str(tmp_path / "out"),
           "config": {"threads": 1, "microBatchSize": 1, **config}, "rollouts": ROLLOUTS[:3]}
    (tmp_path / "job.json").write_text(json.dumps(job))
    return tmp_path / "job.json"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def test_two_ranks_write_one_checkpoint_and_rank_0_alone_prints_progress(tiny, tmp_path):
    run = subprocess.run([*TORCHRUN, str(PYTHON_DIR / "trainer.py"), str(cli_job(tmp_path, tiny))], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e["event"] != "progress"] == ["start", "phase", "phase", "step", "done"]
    # Rank 0 has two of the three rollouts: two training passes, each printed once.
    assert [e["done"] for e in events if e.get("phase") == "train"] == [1, 2]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics == events[-1]["metrics"] and metrics["world_size"] == 2
    assert {"config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer.json", "probe.json"} <= {
        p.name for p in (tmp_path / "out").iterdir()}


def test_a_rank_that_crashes_fails_the_trainer_and_leaves_no_metrics(tiny, tmp_path):
    env = {**os.environ, trainer.FAULT_RANK: "1"}
    run = subprocess.run([*TORCHRUN, str(PYTHON_DIR / "trainer.py"), str(cli_job(tmp_path, tiny))], capture_output=True, text=True,
                         timeout=300, env=env)
    assert run.returncode == 1 and "fails on purpose" in run.stderr, run.stderr[-4000:]
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert not (tmp_path / "out" / "model.safetensors").exists(), "it crashed while training, before anything was saved"


def test_a_job_every_rank_rejects_exits_65_through_torchrun(tiny, tmp_path):
    run = subprocess.run([*TORCHRUN, str(PYTHON_DIR / "trainer.py"), str(cli_job(tmp_path, tiny, learningRat=1e-6))],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 65 and "learning_rat" in run.stderr, run.stderr[-4000:]


def test_ranks_die_with_a_killed_torchrun(tiny, tmp_path):
    """The launcher's SIGKILL reaches torchrun, not its ranks (each in a session of its own)."""
    proc = subprocess.Popen([*TORCHRUN, str(PYTHON_DIR / "trainer.py"), str(cli_job(tmp_path, tiny))],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "start"  # rank 0 runs (and rank 1 with it)
        ranks = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()]
        assert len(ranks) == 2
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 60  # not a speed bound: how long to wait for the kernel before failing
        while any(alive(pid) for pid in ranks) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in ranks), "ranks outlived torchrun"
    finally:
        proc.kill()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie is dead, waiting to be reaped
    except FileNotFoundError:
        return False
