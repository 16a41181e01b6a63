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
    metrics.json             loss, kl, clip fraction, grad norm, tokens/s, peak memory, steps, world size
Stdout carries one JSON object per line (start / phase / step / done) for the launcher's heartbeats;
logs go to stderr.

On several devices (config `trainer.devices` > 1) the launcher runs this file under torchrun,
`python python/torchrun.py --standalone --nproc_per_node=N python/trainer.py JOB.json`: every rank
reads the whole job and trains on a fixed slice of each mini-batch (rank_schedule); full weights are
sharded with FSDP2, a LoRA adapter is replicated under DDP; gradients are summed over ranks with the
loss divided by the mini-batch's global token count, so the update is the one-process update up to
float rounding. Rank 0 alone prints progress and writes the files, metrics.json after every rank
finished. What is specific to several ranks lives in python/distributed.py.
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

import distributed  # noqa: E402
import dtypes  # noqa: E402
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
    threads: int = 0  # torch intra-op threads on CPU per rank; 0 = the host's cores shared out among its ranks
    lora: LoraSettings | None = None  # train a low-rank adapter on the frozen base instead of every weight; None = full-parameter (paper)
    # auto, bfloat16 or float32 (python/dtypes.py: auto is bf16 on CUDA and on CPUs that compute bf16 in hardware). LoRA: the
    # frozen base is held in it (the adapter stays fp32). Full weights: fp32 master weights; on CUDA the forward autocasts to
    # it. Job files may still call it loraBaseDtype.
    dtype: str = "auto"
    # Efficiency options; off by default, each gives the same update up to float rounding (tests).
    micro_batch_tokens: int = 0  # > 0: a micro-batch holds as many sequences as fit this many tokens (padded, or packed with `pack`) instead of micro_batch_size
    recompute_old_logprobs: bool = False  # run the old log-prob pass even where it equals the training pass (step 2); tests compare the two
    measure_kl: bool = False  # with kl_coef 0 the KL term is 0 and its reference pass is skipped (kl reported as null); this runs it to report the KL
    pack: bool = False  # a micro-batch is one row of concatenated sequences (positions restart per sequence, attention stays within each): no padding
    gradient_checkpointing: bool = False  # recompute each decoder layer's activations in the backward pass: less memory, about a third more compute
    attn_implementation: str = ""  # transformers' attention kernel ("sdpa", "eager", "flash_attention_2" if installed: variable-length with `pack`); "" = its default
    lora_fsdp: bool = False  # LoRA on several devices: shard base and adapter with FSDP2 instead of replicating the base (a base too large for one device)


def camel_to_snake(name: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", name).lower()


def snake_keys(raw: dict, cls, what: str, aliases: dict[str, str] | None = None) -> dict:
    known = {f.name for f in fields(cls)}
    values = {camel_to_snake(k): v for k, v in raw.items()}
    for old, new in (aliases or {}).items():
        if old in values:
            value = values.pop(old)
            if values.setdefault(new, value) != value:
                raise ValueError(f"{what} keys {old} ({value!r}) and {new} ({values[new]!r}) disagree")
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} keys: {', '.join(unknown)}")
    return values


def parse_config(raw: dict) -> TrainConfig:
    values = snake_keys(raw, TrainConfig, "trainer config", aliases={"lora_base_dtype": "dtype"})  # its name in older job files
    if values.get("lora") is not None:
        values["lora"] = LoraSettings(**snake_keys(values["lora"], LoraSettings, "trainer config lora"))
    cfg = TrainConfig(**values)
    assert 0 < cfg.clip_low < 1 and cfg.clip_high > 0, "clip range must keep 1 inside (1 - low, 1 + high)"
    assert cfg.micro_batch_size >= 1 and cfg.ppo_epochs >= 1 and cfg.warmup_steps >= 0 and cfg.decay_steps >= 0
    assert cfg.mini_batch_size % cfg.micro_batch_size == 0, "mini_batch_size must be a multiple of micro_batch_size"
    assert cfg.dtype in ("auto", "bfloat16", "float32"), f"dtype {cfg.dtype!r} is not auto, bfloat16 or float32"
    assert cfg.micro_batch_tokens >= 0, "micro_batch_tokens must be >= 0"
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


emitting = True  # only rank 0 prints progress (main sets it)


def emit(event: str, **fields) -> None:
    """One progress line on stdout; the launcher turns each into an activity heartbeat."""
    if emitting:
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
    """Per-token loss terms for [batch, tokens] tensors; advantages are [batch], or per token when
    several rollouts share a row (packed)."""
    adv = advantages if advantages.dim() == logp.dim() else advantages.unsqueeze(-1)
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


def packed_tensors(rows, device):
    """One row of concatenated sequences: input ids, position ids restarting at 0 for each sequence
    (from which transformers confines attention to each sequence), the response mask, and each
    token's advantage. The last position of a sequence predicts the next one's first token: mask 0."""
    ids, positions, mask, advantages = [], [], [], []
    for p, r, a in rows:
        n = len(p) + len(r)
        ids += p + r
        positions += range(n)
        mask += [0.0] * (len(p) - 1) + [1.0] * len(r) + [0.0]
        advantages += [a] * n
    as_row = lambda values, dtype: torch.tensor([values], dtype=dtype, device=device)  # noqa: E731
    return (as_row(ids, torch.long), as_row(positions, torch.long), as_row(mask[:-1], torch.float32),
            as_row(advantages[:-1], torch.float32))


def model_batch(rows, device, pack: bool):
    """(ids, attention mask, position ids, response mask, advantages): padded rows, or one packed row."""
    if pack:
        ids, positions, mask, advantages = packed_tensors(rows, device)
        return ids, None, positions, mask, advantages
    ids, attention, mask, advantages = batch_tensors(rows, device)
    return ids, attention, None, mask, advantages


def token_logprobs(model, ids, attention, autocast, position_ids=None, response_mask=None):
    """log p(token j+1 | tokens <= j) at every position j, in fp32 whatever the compute dtype.

    With response_mask ([B, T-1], 1 where a position predicts a response token), only the positions
    that some row's mask covers get logits (0 elsewhere, where the mask zeroes them anyway): the output
    layer and the log-softmax over the vocabulary (151,936 entries for Qwen2.5) cost about a quarter of
    a forward pass per position, and a prompt position needs neither. A test prompt is ~80% of its
    rollout (the candidate's code), so most of that work was for nothing."""
    inputs = {"attention_mask": attention} if position_ids is None else {"position_ids": position_ids}
    keep = None if response_mask is None else response_mask.bool().any(0).nonzero()[:, 0]
    with autocast():
        logits = model(input_ids=ids, use_cache=False, logits_to_keep=0 if keep is None else keep, **inputs).logits
    if keep is None:
        return torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    kept = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, keep + 1].unsqueeze(-1)).squeeze(-1)
    return kept.new_zeros(ids.shape[0], ids.shape[1] - 1).index_copy(1, keep, kept)


def split_micro(rows, cfg: "TrainConfig") -> list[list]:
    """Consecutive micro-batches of micro_batch_size sequences, or with micro_batch_tokens of as many
    as fit that many tokens (padded width times sequences, or the packed length); a longer sequence
    gets a micro-batch of its own."""
    if not cfg.micro_batch_tokens:
        return [rows[i : i + cfg.micro_batch_size] for i in range(0, len(rows), cfg.micro_batch_size)]
    cost = (lambda b: sum(len(p) + len(r) for p, r, _ in b)) if cfg.pack else (lambda b: len(b) * max(len(p) + len(r) for p, r, _ in b))
    out = []
    for row in rows:
        if out and cost(out[-1] + [row]) <= cfg.micro_batch_tokens:
            out[-1].append(row)
        else:
            out.append([row])
    return out


def rank_schedule(rows, cfg: "TrainConfig", rank: int, world: int) -> list[list[list]]:
    """This rank's micro-batches of each mini-batch (optimizer step). A mini-batch is mini_batch_size
    consecutive rollouts (0 = all) whatever the number of ranks; rank r trains on its r-th, (r+world)-th,
    ... rollouts. Every rank makes as many passes per mini-batch as the busiest one: FSDP2 and DDP
    communicate in each forward and backward, so a rank with fewer rollouts (or none) pads with
    empty micro-batches, which contribute nothing. With one rank this is the micro-batches in order."""
    step = cfg.mini_batch_size or len(rows)
    schedule = []
    for i in range(0, len(rows), step):
        mini = rows[i : i + step]
        shares = [split_micro(mini[r::world], cfg) for r in range(world)]
        passes = max(len(s) for s in shares)
        schedule.append(shares[rank] + [[] for _ in range(passes - len(shares[rank]))])
    return schedule


# Empty micro-batches still run the model on one short sequence (any will do: its loss is
# multiplied by 0) so that this rank takes part in the collectives of the pass.
def stand_in(rows):
    p, r, _ = rows[0]
    return [(p[:1], r[:1], 0.0)]


@torch.no_grad()
def frozen_logprobs(model, chunks, device, autocast, phase: str, pack: bool = False, all_rows=None) -> list[torch.Tensor | None]:
    model.eval()
    out = []
    for i, rows in enumerate(chunks):
        ids, attention, positions, mask, _ = model_batch(rows or stand_in(all_rows), device, pack)
        logp = token_logprobs(model, ids, attention, autocast, positions, mask)
        out.append(logp if rows else None)
        emit("progress", phase=phase, done=i + 1, total=len(chunks))
    return out


def load_model(path: str, device, **options):
    # fp32 master weights everywhere: at lr 1e-6 an update is ~1e-4 of a weight, below bf16's resolution
    # (2^-8), so bf16 weights would round most updates away. On CUDA the compute runs in bf16 autocast.
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
    return model.to(device)


def load_lora_policy(job: dict, lora: LoraSettings, base_dtype: torch.dtype, device, **options):
    """The frozen base with a trainable adapter: job["adapter"] continued, or a fresh one.
    Only the adapter's parameters need fp32 master weights; the base is never updated, so it is held
    in `base_dtype`: bf16 halves its memory and, on a CPU with AVX-512 BF16, doubles its speed, but
    a CPU without bf16 instructions emulates it several times slower than fp32 (docs/trainer-contract.md
    has both measurements; python/dtypes.py picks). peft keeps the adapter in fp32 and casts its
    input, so the update itself is computed and applied in fp32."""
    from peft import LoraConfig, PeftModel, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(job["policy"], dtype=base_dtype, **options).to(device)
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


def load_optimizer_state(path: str, model, optimizer, sharded: distributed.World | None = None) -> int:
    """Into the optimizer of `model`, or with `sharded` into FSDP2's shards (rank 0 reads the file)."""
    with open(path, "rb") as f:  # safetensors header: 8-byte length, then JSON with __metadata__
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
    assert meta["format"] == OPTIMIZER_FORMAT, f"{path}: unknown optimizer state format {meta['format']}"
    params = trainable(model)
    stored = distributed.stored_names(path)
    if stored != {name for name, _ in params}:
        # e.g. a full-parameter state given to a LoRA job, or an adapter of another shape: no retry fixes it.
        raise JobError(f"{path} holds moments of {len(stored)} parameters that are not the {len(params)} this job trains")
    step = int(meta["step"])
    if sharded:
        distributed.scatter_moments(path, model, optimizer, sharded, [name for name, _ in params], step)
        return step
    tensors = load_file(path)
    for name, p in params:
        optimizer.state[p] = {
            "step": torch.tensor(float(step)),
            "exp_avg": tensors[f"exp_avg/{name}"].to(p.device),
            "exp_avg_sq": tensors[f"exp_avg_sq/{name}"].to(p.device),
        }
    return step


def save_optimizer_state(path: Path, model, optimizer, step: int, cfg: TrainConfig) -> None:
    write_optimizer_state(path, {name: optimizer.state[p] for name, p in trainable(model)}, step, cfg)


def write_optimizer_state(path: Path, moments: dict[str, dict], step: int, cfg: TrainConfig) -> None:
    tensors = {}
    for name, state in moments.items():
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


@dataclass(frozen=True)
class Precision:
    """What config `dtype` means for this job. Weights: a LoRA base is held in the chosen dtype; trained
    full weights stay fp32 (see load_model). Compute: full weights reach bf16 only through CUDA's
    autocast, which the trainer does not use on CPU, so on CPU they compute in fp32 whatever is chosen."""
    weights: torch.dtype
    compute: torch.dtype
    bf16_autocast: bool


def resolve_precision(cfg: TrainConfig, device: torch.device) -> Precision:
    chosen = dtypes.resolve(cfg.dtype, device)
    bf16_autocast = device.type == "cuda" and chosen == torch.bfloat16
    weights = chosen if cfg.lora else torch.float32
    return Precision(weights, torch.bfloat16 if bf16_autocast else weights, bf16_autocast)


def has_dropout(model) -> bool:
    """Whether a training pass is random: its log-probs then differ from a frozen (eval) pass's."""
    config = getattr(model, "config", None)
    return (any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())
            or float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0)


def model_options(cfg: TrainConfig) -> dict:
    return {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}


def load_policy(job: dict, cfg: TrainConfig, world: distributed.World, precision: Precision):
    """The policy as this mode holds it (for log-prob passes, the probe and saving), and the module
    the training passes call: the same, except with LoRA under DDP (the wrapper that reduces the
    adapter's gradients)."""
    if cfg.lora:
        on_cpu_until_sharded = world.sharded and cfg.lora_fsdp
        policy = load_lora_policy(job, cfg.lora, precision.weights, torch.device("cpu") if on_cpu_until_sharded else world.device,
                                  **model_options(cfg))
    elif world.sharded:
        policy = distributed.load_sharded(job["policy"], world, mixed_bf16=precision.bf16_autocast, trainable=True,
                                          checkpointing=cfg.gradient_checkpointing, **model_options(cfg))
        return policy, policy
    else:
        policy = load_model(job["policy"], world.device, **model_options(cfg))
    if cfg.gradient_checkpointing:  # non-reentrant: it needs no input that requires grad, and composes with FSDP2 and DDP
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if not world.sharded:
        return policy, policy
    if cfg.lora_fsdp:  # bf16 base and fp32 adapter in one all-gather (FSDP2 allows mixed dtypes of frozen parameters)
        return distributed.shard(policy, world, mixed_bf16=False), policy
    return policy, distributed.replicate_adapter(policy, world)


def save_checkpoint(out: Path, policy, optimizer, tokenizer, step: int, cfg: TrainConfig, world: distributed.World) -> None:
    """Weights in fp32 (see load_model) and the tokenizer, or only the adapter (its base is the job's
    policy, unchanged), and the optimizer state. Sharded weights and moments are gathered whole to
    rank 0 first (every rank takes part); rank 0 writes the same files as one process."""
    fsdp = world.sharded and (not cfg.lora or cfg.lora_fsdp)
    weights = distributed.gathered_weights(policy) if fsdp else None
    moments = distributed.gathered_moments(policy, optimizer) if fsdp else None
    if not world.main:
        return
    if cfg.lora:
        policy.save_pretrained(out, **({"state_dict": weights} if fsdp else {}))
        (out / "README.md").unlink(missing_ok=True)  # peft's generated model card: not part of the checkpoint
    else:
        policy.save_pretrained(out, safe_serialization=True, **({"state_dict": weights} if fsdp else {}))
        tokenizer.save_pretrained(out)
    if fsdp:
        names = {name for name, _ in trainable(policy)}
        assert set(moments) == names, f"gathered moments of {len(moments)} parameters, expected {len(names)}"
        write_optimizer_state(out / "optimizer.safetensors", moments, step, cfg)
    else:
        save_optimizer_state(out / "optimizer.safetensors", policy, optimizer, step, cfg)


# Tests only: the rank named here raises at its first training pass, as a crashed rank would.
FAULT_RANK = "CODE_A1_TRAINER_FAULT_RANK"


def main(argv: list[str]) -> dict:
    global emitting
    started = time.time()
    job, cfg = read_job(argv)
    if os.environ.get("CODE_A1_TRAINER_STDIN_WATCH") == "1":
        watch_stdin()
    world = distributed.init_world()
    emitting = world.main  # the launcher reads rank 0's progress lines
    hf_logging.disable_progress_bar()
    device = world.device
    if device.type == "cpu":  # ranks on one host share its cores
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // world.local_size))

    precision = resolve_precision(cfg, device)
    log(f"dtype {cfg.dtype}: weights {dtypes.name_of(precision.weights)}, compute {dtypes.name_of(precision.compute)} on {device.type}")

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision.bf16_autocast)

    out = Path(job["output"])
    out.mkdir(parents=True, exist_ok=True)
    if world.main:
        (out / "metrics.json").unlink(missing_ok=True)  # a stale marker must never vouch for new files
    policy_dir, reference_dir = job["policy"], job["reference"]
    has_tokenizer = lambda d: (Path(d) / "tokenizer_config.json").is_file()  # noqa: E731
    tokenizer = AutoTokenizer.from_pretrained(policy_dir if has_tokenizer(policy_dir) else reference_dir)
    rows, retokenized = load_rollouts(job, tokenizer)
    assert rows, "the job holds no rollouts (the launcher copies the base checkpoint instead)"
    emit("start", role=job.get("role"), rollouts=len(rows), device=device.type, retokenized=retokenized, world_size=world.size)

    # 1. Fixed micro-batches (rank_schedule): the frozen log-probs are computed on exactly the same
    #    batches as training, so the first micro-batch's ratio is 1 to the last bit. The token-mean
    #    denominator of a mini-batch counts the response tokens of all its rollouts, on every rank.
    schedule = rank_schedule(rows, cfg, world.rank, world.size)
    micro, minis = [], []  # this rank's micro-batches, and the indices of each mini-batch's
    for mini in schedule:
        minis.append(list(range(len(micro), len(micro) + len(mini))))
        micro += mini
    per_step = cfg.mini_batch_size or len(rows)
    mini_tokens = [sum(len(r) for _, r, _ in rows[i : i + per_step]) for i in range(0, len(rows), per_step)]

    # 2. Old log-probs from the policy the rollouts were sampled from (with LoRA: base + the adapter
    #    before this update), then the reference's; a separate reference model is freed before the
    #    policy needs memory for training. With one epoch of one optimizer step and no dropout, every
    #    micro-batch's training pass runs the very weights the old log-probs would come from, so they
    #    are that pass's own log-probs, detached (ratio 1, the same loss and gradient): their pass is
    #    skipped, unless the reference is the policy itself and its pass is needed anyway.
    t0 = time.time()
    same_reference = Path(reference_dir).resolve() == Path(policy_dir).resolve()
    policy, trained = load_policy(job, cfg, world, precision)
    load_seconds = time.time() - t0  # not part of the update's speed: left out of logprob_seconds
    # Besides one line per micro-batch, one after each loading and saving phase: the launcher kills a
    # trainer that prints no new line for trainer.stallMinutes (a hung collective, a dead device).
    emit("progress", phase="load_policy", done=1, total=1)
    frozen = lambda model, phase: frozen_logprobs(model, micro, device, autocast, phase, cfg.pack, rows)  # noqa: E731
    on_policy = (cfg.ppo_epochs == 1 and len(minis) == 1 and not has_dropout(policy) and not cfg.recompute_old_logprobs
                 and (cfg.lora is not None or not same_reference))
    old_logp = None if on_policy else frozen(policy, "old_logprobs")
    probe_before = probe.greedy(policy, tokenizer, device, autocast)  # on every rank: FSDP2 gathers weights in each forward
    emit("phase", name="old_logprobs", seconds=round(time.time() - t0, 3))
    # With kl_coef 0 the reference log-probs weigh nothing in the loss: their pass (a third of a CPU
    # update) is skipped and the training pass stands in for them (KL exactly 0, loss unchanged).
    reference_pass = cfg.kl_coef > 0 or cfg.measure_kl
    if not reference_pass:
        ref_logp = None
    elif cfg.lora:  # the reference is the base: the same weights with the adapter switched off
        with policy.disable_adapter():
            ref_logp = frozen(policy, "reference_logprobs")
    elif same_reference:
        ref_logp = old_logp
    else:
        t_load = time.time()
        reference = (distributed.load_sharded(reference_dir, world, mixed_bf16=precision.bf16_autocast, trainable=False, checkpointing=False,
                                              **model_options(cfg))
                     if world.sharded else load_model(reference_dir, device, **model_options(cfg)))
        load_seconds += time.time() - t_load
        emit("progress", phase="load_reference", done=1, total=1)
        ref_logp = frozen(reference, "reference_logprobs")
        del reference
    emit("phase", name="reference_logprobs", seconds=round(time.time() - t0, 3))
    distributed.reshard(policy)
    logprob_seconds = time.time() - t0 - load_seconds

    # 3. Optimizer over the trained parameters, resumed when the previous iteration left a state (the
    #    warm-up continues from its step).
    params = [p for _, p in trainable(policy)]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2),
                                  eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    fsdp = world.sharded and (not cfg.lora or cfg.lora_fsdp)
    step = load_optimizer_state(job["optimizerState"], policy, optimizer, world if fsdp else None) if job.get("optimizerState") else 0
    first_step = step
    emit("progress", phase="load_optimizer", done=1, total=1)

    # 4. One PPO epoch (or ppo_epochs): each mini-batch is one optimizer step; its micro-batches accumulate.
    #    An empty micro-batch (this rank has fewer rollouts than another) runs a stand-in sequence with
    #    loss 0 so that this rank joins the pass's collectives.
    policy.train()
    trained.train()
    t1 = time.time()
    totals = {"loss": 0.0, "pg_loss": 0.0, "kl": 0.0, "clip": 0.0, "ratio": 0.0, "tokens": 0.0}  # this rank's sums
    grad_norms, skipped = [], 0
    for epoch in range(cfg.ppo_epochs):
        for mini, n_tokens in zip(minis, mini_tokens):
            optimizer.zero_grad(set_to_none=True)
            for k, m in enumerate(mini):
                if os.environ.get(FAULT_RANK) == str(world.rank):
                    raise RuntimeError(f"{FAULT_RANK}={world.rank}: this rank fails on purpose")
                with distributed.accumulating(trained, last=k == len(mini) - 1):
                    ids, attention, positions, mask, adv = model_batch(micro[m] or stand_in(rows), device, cfg.pack)
                    logp = token_logprobs(trained, ids, attention, autocast, positions, mask)
                    if micro[m]:
                        old = logp.detach() if old_logp is None else old_logp[m]
                        ref = logp.detach() if ref_logp is None else ref_logp[m]
                        loss_t, pg, kl, ratio, clipped = grpo_token_losses(logp, old, ref, adv, cfg)
                        loss = (loss_t * mask).sum() / n_tokens
                    else:
                        loss = logp.sum() * 0.0
                    loss.backward()
                emit("progress", phase="train", epoch=epoch, done=m + 1, total=len(micro))
                if not micro[m]:
                    continue
                with torch.no_grad():
                    totals["loss"] += loss.item() * n_tokens
                    totals["pg_loss"] += (pg * mask).sum().item()
                    totals["kl"] += (kl * mask).sum().item()
                    totals["clip"] += (clipped * mask).sum().item()
                    totals["ratio"] += (ratio * mask).sum().item()
                    totals["tokens"] += mask.sum().item()
            grad_norm = distributed.clip_grad_norm(params, cfg.grad_clip)  # the global norm: every rank skips alike
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
            loss_sum, token_sum = world.sum([totals["loss"], totals["tokens"]])
            emit("step", step=step, epoch=epoch, lr=lr, grad_norm=grad_norm, loss=loss_sum / max(token_sum, 1))
    train_seconds = time.time() - t1
    assert step - first_step + skipped == cfg.ppo_epochs * len(minis), "every mini-batch either steps or is skipped"
    totals = dict(zip(totals, world.sum(list(totals.values()))))

    # 5. Save (every rank takes part in gathering sharded state); metrics.json last, once every rank is done.
    save_checkpoint(out, policy, optimizer, tokenizer, step, cfg, world)
    emit("progress", phase="save", done=1, total=1)
    probe_after = probe.greedy(policy, tokenizer, device, autocast)
    if world.main:
        probe_doc = probe.document(probe_after, probe_before, dtypes.name_of(precision.compute))
        (out / "probe.json").write_text(json.dumps(probe_doc, indent=2))
    all_tokens = sum(len(p) + len(r) for p, r, _ in rows)
    n = max(totals["tokens"], 1)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    metrics = {
        "loss": totals["loss"] / n,
        "pg_loss": totals["pg_loss"] / n,
        "kl": totals["kl"] / n if reference_pass else None,  # not measured: see reference_pass
        "reference_pass": int(reference_pass),
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
        # Whole update (frozen log-prob passes + forward/backward/step) and the training loop alone, all ranks together.
        "tokens_per_s": all_tokens * cfg.ppo_epochs / (logprob_seconds + train_seconds),
        "train_tokens_per_s": all_tokens * cfg.ppo_epochs / train_seconds,
        "logprob_seconds": logprob_seconds,  # frozen log-prob passes and the probe, without loading the models
        "old_logprob_pass": 0 if on_policy else 1,  # 0: the old log-probs were the training pass's own (step 2)
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        "peak_memory_bytes": world.max(peak),  # CUDA: max allocated; CPU: max resident set; of the rank that used most
        "cuda": int(device.type == "cuda"),
        "world_size": world.size,  # ranks that trained (torchrun processes, one device each)
        "lora_rank": cfg.lora.rank if cfg.lora else 0,
        "trainable_parameters": sum(p.numel() for p in params),  # a sharded parameter's numel is the whole tensor's
        "base_dtype": dtypes.name_of(precision.weights),  # of the frozen weights (LoRA) or the trained ones
        "compute_dtype": dtypes.name_of(precision.compute),  # of the forward and backward passes (CUDA: bf16 autocast)
        "seconds": time.time() - started,
    }
    world.barrier()  # every rank finished: only now may metrics.json vouch for the checkpoint
    if world.main:
        summary = {"role": job.get("role"), "policy": policy_dir, "reference": reference_dir, "adapter": job.get("adapter"),
                   "seed": job.get("seed"), "rollouts": len(rows), "world_size": world.size}
        (out / "trainer.json").write_text(json.dumps({"config": asdict(cfg), "job": summary, "step": step}, indent=2))
        tmp = out / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2))
        tmp.rename(out / "metrics.json")
    emit("done", metrics=metrics)
    world.close()
    return metrics


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except JobError as e:
        log(f"invalid job: {e}")
        sys.exit(65)
