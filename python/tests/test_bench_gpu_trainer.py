"""The GPU trainer benchmark's CPU path: random weights of a tiny shape, every mode, every figure."""
import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR))
import bench_gpu_trainer  # noqa: E402


def test_the_benchmark_reports_speed_utilisation_and_memory_of_each_mode(tmp_path):
    results = bench_gpu_trainer.main(["--model", str(tmp_path / "none"), "--shape", "tiny", "--modes", "full,lora,full-packed",
                                      "--rollouts", "3", "--prompt-tokens", "8", "--response-tokens", "8", "--micro-batch", "2",
                                      "--peak-tflops", "1", "--work-dir", str(tmp_path)])
    assert [r["mode"] for r in results] == ["full", "lora", "full-packed"]
    for r in results:
        assert r["tokens"] == 3 * 16 and r["world_size"] == 1 and r["cuda"] == 0
        assert r["train_tokens_per_s"] > 0 and 0 < r["train_mfu"] and 0 < r["update_mfu"] and r["peak_memory_gib"] > 0
    assert results[1]["trainable_parameters"] < results[0]["trainable_parameters"], "LoRA trains the adapter alone"
    assert results[0]["base_dtype"] == "float32", "full weights keep fp32 master weights"
    assert list(tmp_path.iterdir()) == [], "the scratch model and checkpoints are removed"
