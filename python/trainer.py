"""
GRPO policy update of one Code-A1 role (docs/code-a1.md, step 9): one epoch of PPO-clipped updates
over the kept rollouts, with a k3 KL penalty to the frozen reference model. Either every weight is
trained, or (config `lora`) a low-rank adapter on a frozen base.

    python python/trainer.py JOB.json

The job file (written by activities/update-policy.ts; full contract in docs/trainer-contract.md):
    {"role": "code", "policy": DIR, "reference": DIR, "optimizerState": FILE | null, "output": DIR,
     "adapter": DIR | null, "seed": 0,            LoRA only: the adapter to continue (null = a fresh one)
     "config": {"learningRate": 1e-6, ...,        camelCase names of TrainConfig below
                "lora": {"rank": 16, "alpha": 32, "dropout": 0, "targetModules": ["q_proj", ...]}},
     "rollouts": [{"promptTokenIds": [...], "responseTokenIds": [...], "advantage": 0.7,
                   "messages": [...], "response": "...", "finishReason": "stop"}]}
Token ids are trained on exactly as sampled. A rollout without them is tokenised with the chat
template (counted in metrics as `retokenized`): its ids may differ from what the sampler saw.
With LoRA, `policy` and `reference` are both the base model: the rollouts were sampled from base +
adapter, the KL reference is the base with the adapter switched off (no second model in memory).

Writes into `output`, metrics.json last (its presence means the rest is complete):
    config.json, model.safetensors, generation_config.json, tokenizer files    the new policy
      (LoRA instead: adapter_config.json, adapter_model.safetensors, loadable by peft and vLLM)
    optimizer.safetensors    AdamW moments of the trained parameters by name; metadata: global step, trainer config
    trainer.json             the trainer config and job summary that produced this checkpoint
    probe.json               greedy completion of a fixed prompt with its log-probs, after and before
                             the update (python/probe.py): what a server serving these weights answers
    metrics.json             loss, kl, clip fraction, grad norm, tokens/s, peak memory, steps
Stdout carries one JSON object per line (start / phase / step / done) for the launcher's heartbeats;
logs go to stderr.

Multi-GPU design (FSDP through torchrun; not run here, the launcher's `trainer.command` would be
`["torchrun", "--nproc_per_node=N", "python/trainer.py"]`):
  1. init_process_group("nccl"); rank r takes rollouts[r::world] so every rank sees a fixed slice.
  2. Wrap each decoder layer, then the model, with FSDP2 `fully_shard` (MixedPrecisionPolicy:
     bf16 params for compute, fp32 reduce); the reference model is sharded the same way, without
     grads. Master weights and AdamW moments stay fp32 and sharded.
  3. Token-mean over the whole mini-batch: all-reduce the mini-batch's response-token count first,
     divide each rank's summed token loss by that global count; FSDP's gradient reduce-scatter then
     sums, which gives exactly the single-process gradient.
  4. clip_grad_norm_ on the sharded (DTensor) grads computes the global norm.
  5. Save with torch.distributed.checkpoint.state_dict: get_model_state_dict(full_state_dict,
     cpu_offload) and get_optimizer_state_dict, gathered to rank 0, which writes the same files as
     here; a barrier, then rank 0 writes metrics.json last. Non-zero ranks print no progress lines.
  With LoRA the adapter is small enough to replicate: plain DDP over the adapter's parameters, the
  bf16 base replicated (or sharded with fully_shard when it does not fit one device).
"""
import json
import math
import os
import re
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the trainer never downloads anything
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import probe  # noqa: E402

OPTIMIZER_FORMAT = "code-a1-adamw-v1"


@dataclass
class LoraSettings:
    rank: int = 16  # r of the low-rank update B @ A; the adapter has r * (in + out) parameters per target layer
    alpha: float = 32.0  # the update is scaled by alpha / rank
    dropout: float = 0.0  # on the adapter's input while training; > 0 makes even the first ratio differ from 1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


@dataclass
class TrainConfig:
    learning_rate: float = 1e-6  # peak AdamW learning rate. Paper: 1e-6
    warmup_steps: int = 10  # optimizer steps of cosine warm-up from 0 to the peak, counted across iterations. Paper: 10
    weight_decay: float = 0.1  # decoupled (AdamW), on every parameter as verl does. Paper: 0.1
    grad_clip: float = 1.0  # max global L2 norm of the gradient. Paper: 1.0
    clip_low: float = 0.2  # the ratio is clipped below at 1 - clip_low. Paper: 0.2
    clip_high: float = 0.28  # ... and above at 1 + clip_high ("clip-higher"). Paper: 0.28
    kl_coef: float = 0.001  # weight of the per-token k3 KL to the reference. Paper: 0.001
    kl_clamp: float = 10.0  # k3 clamped to [-kl_clamp, kl_clamp] per token (verl's low_var_kl): one far-off token cannot dominate
    ppo_epochs: int = 1  # passes over the rollouts. Paper: 1
    micro_batch_size: int = 4  # sequences per forward/backward; gradients accumulate across micro-batches
    mini_batch_size: int = 0  # sequences per optimizer step, a multiple of micro_batch_size; 0 = all rollouts in one step
    decay_steps: int = 0  # cosine decay to 0 over this many steps after warm-up; 0 = constant (a run's length is open-ended)
    adam_beta1: float = 0.9  # torch/verl defaults
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    threads: int = 0  # torch intra-op threads on CPU; 0 = all cores
    lora: LoraSettings | None = None  # train a low-rank adapter on the frozen base instead of every weight; None = full-parameter (paper)
    lora_base_dtype: str = "bfloat16"  # LoRA only: dtype of the frozen base (see load_lora_policy); the adapter stays fp32


def camel_to_snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def snake_keys(raw: dict, cls, what: str) -> dict:
    known = {f.name for f in fields(cls)}
    values = {camel_to_snake(k): v for k, v in raw.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(unknown)}")
    return values


def parse_config(raw: dict) -> TrainConfig:
    values = snake_keys(raw, TrainConfig, "trainer config")
    if values.get("lora") is not None:
        values["lora"] = LoraSettings(**snake_keys(values["lora"], LoraSettings, "trainer config lora"))
    cfg = TrainConfig(**values)
    assert 0 < cfg.clip_low < 1 and cfg.clip_high > 0, "clip range must keep 1 inside (1 - low, 1 + high)"
    assert cfg.micro_batch_size >= 1 and cfg.ppo_epochs >= 1 and cfg.warmup_steps >= 0 and cfg.decay_steps >= 0
    assert cfg.mini_batch_size % cfg.micro_batch_size == 0, "mini_batch_size must be a multiple of micro_batch_size"
    assert cfg.lora_base_dtype in ("bfloat16", "float32"), f"lora_base_dtype {cfg.lora_base_dtype!r} is not bfloat16 or float32"
    if cfg.lora:
        lora = cfg.lora
        assert isinstance(lora.rank, int) and lora.rank >= 1, f"lora.rank must be a positive integer, not {lora.rank!r}"
        assert lora.alpha > 0 and 0 <= lora.dropout < 1, "lora.alpha must be > 0 and lora.dropout in [0, 1)"
        assert lora.target_modules and all(isinstance(m, str) and m for m in lora.target_modules), "lora.targetModules must name modules"
    return cfg


class JobError(Exception):
    """The job file is unusable. Exit status 65 tells the launcher that no retry can help."""


def read_job(argv: list[str]) -> tuple[dict, TrainConfig]:
    try:
        assert len(argv) == 1, "usage: trainer.py JOB.json"
        job = json.loads(Path(argv[0]).read_text())
        for key in ("policy", "reference", "output", "rollouts"):
            assert key in job, f"the job has no {key!r}"
        cfg = parse_config(job.get("config", {}))
        if cfg.lora:
            # The KL reference is the policy's own base with the adapter switched off: a different
            # reference would need a second model in memory and is not what a LoRA run means.
            assert Path(job["reference"]).resolve() == Path(job["policy"]).resolve(), (
                f"with lora the reference must be the base model (policy {job['policy']}), not {job['reference']}")
        else:
            assert not job.get("adapter"), "the job names an adapter but its config has no lora"
        return job, cfg
    except (OSError, ValueError, TypeError, AssertionError) as e:
        raise JobError(f"{argv}: {type(e).__name__}: {e}") from e


def emit(event: str, **fields) -> None:
    """One progress line on stdout; the launcher turns each into an activity heartbeat."""
    print(json.dumps({"event": event, **fields}), flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# The loss. Per response token t of a rollout with advantage A (the group-normalised reward):
#   1. ratio_t = exp(logp_t - old_logp_t)                    old = the policy the rollouts came from
#   2. pg_t    = max(-A * ratio_t, -A * clip(ratio_t, 1 - clip_low, 1 + clip_high))
#   3. kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1  k3: unbiased for KL(policy || ref), >= 0
#   4. loss    = sum_t (pg_t + kl_coef * kl_t) / (response tokens of the mini-batch)   token-mean
# No entropy bonus (paper). Prompt and padding positions have mask 0 and never contribute.


def grpo_token_losses(logp, old_logp, ref_logp, advantages, cfg: TrainConfig):
    """Per-token loss terms for [batch, tokens] tensors; advantages are [batch]."""
    adv = advantages.unsqueeze(-1)
    ratio = torch.exp(logp - old_logp)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1 - cfg.clip_low, 1 + cfg.clip_high)
    pg = torch.maximum(unclipped, clipped)
    log_ratio_ref = ref_logp - logp
    kl = torch.clamp(torch.exp(log_ratio_ref) - log_ratio_ref - 1, -cfg.kl_clamp, cfg.kl_clamp)
    return pg + cfg.kl_coef * kl, pg, kl, ratio, clipped > unclipped


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based, global across iterations):
    1. warm-up: a half-cosine ramp, peak * (1 - cos(pi * (step + 1) / (warmup + 1))) / 2, so step 0 already moves;
    2. then the peak, or with decay_steps a cosine decay peak * (1 + cos(pi * k / decay_steps)) / 2 to 0.
    Decay is off by default: a run is extended by raising `iterations`, so its length is not known here."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * 0.5 * (1 - math.cos(math.pi * (step + 1) / (cfg.warmup_steps + 1)))
    if cfg.decay_steps == 0:
        return cfg.learning_rate
    k = min(step - cfg.warmup_steps, cfg.decay_steps)
    return cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * k / cfg.decay_steps))


# --------------------------------------------------------------------------------------------------
# Rollouts and log-probabilities


def load_rollouts(job: dict, tokenizer) -> tuple[list[tuple[list[int], list[int], float]], int]:
    """(prompt ids, response ids, advantage) per rollout, and how many had to be re-tokenised."""
    rows, retokenized = [], 0
    for i, r in enumerate(job["rollouts"]):
        prompt, response = r.get("promptTokenIds"), r.get("responseTokenIds")
        if prompt is None or response is None:
            retokenized += 1
            text = tokenizer.apply_chat_template(r["messages"], add_generation_prompt=True, tokenize=False)
            prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
            response = tokenizer(r["response"], add_special_tokens=False)["input_ids"]
            if r.get("finishReason") == "stop":  # the sampler's ids end with the end-of-turn token
                response = response + [tokenizer.eos_token_id]
        assert len(prompt) > 0 and len(response) > 0, f"rollout {i} has an empty prompt or response"
        assert math.isfinite(r["advantage"]), f"rollout {i} has a non-finite advantage"
        rows.append((list(prompt), list(response), float(r["advantage"])))
    return rows, retokenized


def batch_tensors(rows, device):
    """Right-padded input ids, attention mask, and the response mask aligned with next-token targets."""
    width = max(len(p) + len(r) for p, r, _ in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attention = torch.zeros(len(rows), width, dtype=torch.long)
    response_mask = torch.zeros(len(rows), width - 1)
    for i, (p, r, _) in enumerate(rows):
        ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        attention[i, : len(p) + len(r)] = 1
        response_mask[i, len(p) - 1 : len(p) + len(r) - 1] = 1  # logits at position j predict token j + 1
    advantages = torch.tensor([a for _, _, a in rows])
    return ids.to(device), attention.to(device), response_mask.to(device), advantages.to(device)


def token_logprobs(model, ids, attention, autocast):
    """log p(token j+1 | tokens <= j) for every position, in fp32 whatever the compute dtype."""
    with autocast():
        logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits[:, :-1]
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def frozen_logprobs(model, chunks, device, autocast, phase: str) -> list[torch.Tensor]:
    model.eval()
    out = []
    for i, rows in enumerate(chunks):
        out.append(token_logprobs(model, *batch_tensors(rows, device)[:2], autocast))
        emit("progress", phase=phase, done=i + 1, total=len(chunks))
    return out


def load_model(path: str, device):
    # fp32 master weights everywhere: at lr 1e-6 an update is ~1e-4 of a weight, below bf16's resolution
    # (2^-8), so bf16 weights would round most updates away. On CUDA the compute runs in bf16 autocast.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.to(device)


def load_lora_policy(job: dict, lora: LoraSettings, base_dtype: str, device):
    """The frozen base with a trainable adapter: job["adapter"] continued, or a fresh one.
    Only the adapter's parameters need fp32 master weights; the base is never updated, so it is held
    in `base_dtype` (bf16 halves its memory and, on a CPU with AVX-512 BF16, speeds it up: see
    docs/trainer-contract.md for the measurement). peft keeps the adapter in fp32 and casts its
    input, so the update itself is computed and applied in fp32."""
    from peft import LoraConfig, PeftModel, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(job["policy"], dtype=getattr(torch, base_dtype)).to(device)
    linear = {name.rsplit(".", 1)[-1] for name, m in base.named_modules() if isinstance(m, torch.nn.Linear)}
    unknown = sorted(set(lora.target_modules) - linear)
    if unknown:
        raise JobError(f"lora.targetModules {unknown} name no linear layer of {job['policy']} (it has {sorted(linear)})")
    # A fresh adapter's A is random (B is zero, so base + fresh adapter is exactly the base), and dropout
    # draws from the same generator: seeding it makes a retried job produce the same adapter.
    torch.manual_seed(int(job.get("seed") or 0))
    if not job.get("adapter"):
        config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
        return get_peft_model(base, config)
    model = PeftModel.from_pretrained(base, job["adapter"], is_trainable=True)
    saved = model.peft_config["default"]
    made = (saved.r, float(saved.lora_alpha), float(saved.lora_dropout), sorted(saved.target_modules))
    asked = (lora.rank, float(lora.alpha), float(lora.dropout), sorted(lora.target_modules))
    if made != asked:
        raise JobError(f"the adapter {job['adapter']} has (rank, alpha, dropout, targetModules) {made}; the config asks for {asked}")
    return model


# --------------------------------------------------------------------------------------------------
# Optimizer state: AdamW moments keyed by parameter name, so a resumed run continues exactly.


def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters the optimizer updates: every weight, or with LoRA the adapter's."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def load_optimizer_state(path: str, model, optimizer) -> int:
    tensors = load_file(path)
    with open(path, "rb") as f:  # safetensors header: 8-byte length, then JSON with __metadata__
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
    assert meta["format"] == OPTIMIZER_FORMAT, f"{path}: unknown optimizer state format {meta['format']}"
    params = trainable(model)
    stored = {k.split("/", 1)[1] for k in tensors}
    if stored != {name for name, _ in params}:
        # e.g. a full-parameter state given to a LoRA job, or an adapter of another shape: no retry fixes it.
        raise JobError(f"{path} holds moments of {len(stored)} parameters that are not the {len(params)} this job trains")
    step = int(meta["step"])
    for name, p in params:
        optimizer.state[p] = {
            "step": torch.tensor(float(step)),
            "exp_avg": tensors[f"exp_avg/{name}"].to(p.device),
            "exp_avg_sq": tensors[f"exp_avg_sq/{name}"].to(p.device),
        }
    return step


def save_optimizer_state(path: Path, model, optimizer, step: int, cfg: TrainConfig) -> None:
    tensors = {}
    for name, p in trainable(model):
        state = optimizer.state[p]
        assert int(state["step"]) == step, f"{name} took {int(state['step'])} steps, expected {step}"
        tensors[f"exp_avg/{name}"] = state["exp_avg"].detach().contiguous().cpu()
        tensors[f"exp_avg_sq/{name}"] = state["exp_avg_sq"].detach().contiguous().cpu()
    save_file(tensors, str(path), metadata={"format": OPTIMIZER_FORMAT, "step": str(step), "config": json.dumps(asdict(cfg))})


def watch_stdin() -> None:
    """With CODE_A1_TRAINER_STDIN_WATCH=1 the launcher holds our stdin open: EOF means it is gone
    (killed without a chance to stop us), and a trainer nobody waits for must not keep the GPU."""
    def wait_for_eof():
        # os.read on the raw descriptor: sys.stdin's buffered reader holds a lock that would make
        # interpreter shutdown abort while this thread waits.
        while os.read(0, 1 << 16):
            pass
        log("launcher closed stdin; stopping")
        os._exit(3)

    threading.Thread(target=wait_for_eof, daemon=True).start()


# --------------------------------------------------------------------------------------------------


def main(argv: list[str]) -> dict:
    started = time.time()
    job, cfg = read_job(argv)
    if os.environ.get("CODE_A1_TRAINER_STDIN_WATCH") == "1":
        watch_stdin()
    hf_logging.disable_progress_bar()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads or os.cpu_count() or 1)

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    out = Path(job["output"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").unlink(missing_ok=True)  # a stale marker must never vouch for new files
    policy_dir, reference_dir = job["policy"], job["reference"]
    has_tokenizer = lambda d: (Path(d) / "tokenizer_config.json").is_file()  # noqa: E731
    tokenizer = AutoTokenizer.from_pretrained(policy_dir if has_tokenizer(policy_dir) else reference_dir)
    rows, retokenized = load_rollouts(job, tokenizer)
    assert rows, "the job holds no rollouts (the launcher copies the base checkpoint instead)"
    emit("start", role=job.get("role"), rollouts=len(rows), device=device.type, retokenized=retokenized)

    # 1. Fixed micro-batches: the frozen log-probs are computed on exactly the same padded batches as
    #    training, so the first micro-batch's ratio is 1 to the last bit.
    micro = [rows[i : i + cfg.micro_batch_size] for i in range(0, len(rows), cfg.micro_batch_size)]
    per_mini = cfg.mini_batch_size // cfg.micro_batch_size if cfg.mini_batch_size else len(micro)
    minis = [list(range(i, min(i + per_mini, len(micro)))) for i in range(0, len(micro), per_mini)]

    # 2. Old log-probs from the policy the rollouts were sampled from (with LoRA: base + the adapter
    #    before this update), then the reference's; a separate reference model is freed before the
    #    policy needs memory for training.
    t0 = time.time()
    same_reference = Path(reference_dir).resolve() == Path(policy_dir).resolve()
    policy = load_lora_policy(job, cfg.lora, cfg.lora_base_dtype, device) if cfg.lora else load_model(policy_dir, device)
    old_logp = frozen_logprobs(policy, micro, device, autocast, "old_logprobs")
    probe_before = probe.greedy(policy, tokenizer, device, autocast)
    emit("phase", name="old_logprobs", seconds=round(time.time() - t0, 3))
    if cfg.lora:  # the reference is the base: the same weights with the adapter switched off
        with policy.disable_adapter():
            ref_logp = frozen_logprobs(policy, micro, device, autocast, "reference_logprobs")
    elif same_reference:
        ref_logp = old_logp
    else:
        reference = load_model(reference_dir, device)
        ref_logp = frozen_logprobs(reference, micro, device, autocast, "reference_logprobs")
        del reference
    emit("phase", name="reference_logprobs", seconds=round(time.time() - t0, 3))
    logprob_seconds = time.time() - t0

    # 3. Optimizer over the trained parameters, resumed when the previous iteration left a state (the
    #    warm-up continues from its step).
    params = [p for _, p in trainable(policy)]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                  eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    step = load_optimizer_state(job["optimizerState"], policy, optimizer) if job.get("optimizerState") else 0
    first_step = step

    # 4. One PPO epoch (or ppo_epochs): each mini-batch is one optimizer step; its micro-batches accumulate.
    policy.train()
    t1 = time.time()
    totals = {"loss": 0.0, "pg_loss": 0.0, "kl": 0.0, "clip": 0.0, "ratio": 0.0, "tokens": 0.0}
    grad_norms, skipped = [], 0
    for epoch in range(cfg.ppo_epochs):
        for mini in minis:
            n_tokens = sum(sum(len(r) for _, r, _ in micro[m]) for m in mini)  # token-mean denominator
            optimizer.zero_grad(set_to_none=True)
            for m in mini:
                ids, attention, mask, adv = batch_tensors(micro[m], device)
                logp = token_logprobs(policy, ids, attention, autocast)
                loss_t, pg, kl, ratio, clipped = grpo_token_losses(logp, old_logp[m], ref_logp[m], adv, cfg)
                loss = (loss_t * mask).sum() / n_tokens
                loss.backward()
                emit("progress", phase="train", epoch=epoch, done=m + 1, total=len(micro))
                with torch.no_grad():
                    totals["loss"] += loss.item() * n_tokens
                    totals["pg_loss"] += (pg * mask).sum().item()
                    totals["kl"] += (kl * mask).sum().item()
                    totals["clip"] += (clipped * mask).sum().item()
                    totals["ratio"] += (ratio * mask).sum().item()
                    totals["tokens"] += mask.sum().item()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip).item()
            if not math.isfinite(grad_norm):
                skipped += 1  # as verl: a non-finite gradient skips the step instead of poisoning the weights
                log(f"non-finite gradient norm at step {step}; step skipped")
                continue
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            step += 1
            grad_norms.append(grad_norm)
            emit("step", step=step, epoch=epoch, lr=lr, grad_norm=grad_norm, loss=totals["loss"] / max(totals["tokens"], 1))
    train_seconds = time.time() - t1
    assert step - first_step + skipped == cfg.ppo_epochs * len(minis), "every mini-batch either steps or is skipped"

    # 5. Save: weights in fp32 (see load_model) and the tokenizer, or only the adapter (its base is the
    #    job's policy, unchanged); optimizer state, config; metrics.json last.
    if cfg.lora:
        policy.save_pretrained(out)
        (out / "README.md").unlink(missing_ok=True)  # peft's generated model card: not part of the checkpoint
    else:
        policy.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    save_optimizer_state(out / "optimizer.safetensors", policy, optimizer, step, cfg)
    probe_doc = probe.document(probe.greedy(policy, tokenizer, device, autocast), probe_before,
                               cfg.lora_base_dtype if cfg.lora else "float32")
    (out / "probe.json").write_text(json.dumps(probe_doc, indent=2))
    all_tokens = sum(len(p) + len(r) for p, r, _ in rows)
    n = max(totals["tokens"], 1)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    metrics = {
        "loss": totals["loss"] / n,
        "pg_loss": totals["pg_loss"] / n,
        "kl": totals["kl"] / n,
        "clip_fraction": totals["clip"] / n,
        "ratio_mean": totals["ratio"] / n,
        "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else None,  # JSON has no NaN
        "lr": lr_at(step - 1, cfg) if step > first_step else 0.0,
        "steps": step,
        "steps_this_run": step - first_step,
        "skipped_steps": skipped,
        "rollouts": len(rows),
        "retokenized": retokenized,
        "response_tokens": totals["tokens"] / cfg.ppo_epochs,
        "tokens": all_tokens,
        # Whole update (frozen log-prob passes + forward/backward/step) and the training loop alone.
        "tokens_per_s": all_tokens * cfg.ppo_epochs / (logprob_seconds + train_seconds),
        "train_tokens_per_s": all_tokens * cfg.ppo_epochs / train_seconds,
        "logprob_seconds": logprob_seconds,
        "train_seconds": train_seconds,
        "peak_memory_bytes": peak,  # CUDA: max allocated; CPU: max resident set of the process
        "cuda": int(device.type == "cuda"),
        "lora_rank": cfg.lora.rank if cfg.lora else 0,
        "trainable_parameters": sum(p.numel() for p in params),
        "base_dtype": cfg.lora_base_dtype if cfg.lora else "float32",  # of the frozen weights (LoRA) or the trained ones
        "seconds": time.time() - started,
    }
    summary = {"role": job.get("role"), "policy": policy_dir, "reference": reference_dir, "adapter": job.get("adapter"),
               "seed": job.get("seed"), "rollouts": len(rows)}
    (out / "trainer.json").write_text(json.dumps({"config": asdict(cfg), "job": summary, "step": step}, indent=2))
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    tmp.rename(out / "metrics.json")
    emit("done", metrics=metrics)
    return metrics


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except JobError as e:
        log(f"invalid job: {e}")
        sys.exit(65)
