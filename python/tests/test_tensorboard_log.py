"""Training curves: an iteration record in, an event file out that TensorBoard's own reader reads
back with every metric at step = iteration, and a retried iteration never adds a second point."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tensorboard_log

SCRIPT = Path(tensorboard_log.__file__)


def record(iteration, **metrics):
    return {"runId": "r1", "iteration": iteration, "mistakeBookKey": "k", "checkpoints": {"code": "c", "test": "t"}, "metrics": metrics}


def log(rec, out: Path):
    """Runs the script as the activity does: the record on stdin."""
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], input=json.dumps(rec), capture_output=True, text=True)


def event_file(logdir: Path, iteration: int) -> Path:
    return logdir / f"events.out.tfevents.{iteration:08d}.code-a1"


def read_curves(logdir: Path) -> dict:
    """{tag: [(step, value), ...]} as TensorBoard loads the directory (every event file in it)."""
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_every_numeric_metric_is_a_scalar_at_step_iteration_under_a_readable_tag(tmp_path):
    rec = record(
        4,
        **{
            "score.codeRewardMean": 0.25,
            "score.validTestRatio": 0.5,
            "score.attackRate": 0.125,
            "updateMistakeBook.bookTests": 9,
            "score.invalidCodeRate": 0.375,
            "train.code.loss": -0.5,
            "train.test.kl": 0.001,
            "train.code.clip_fraction": 0.0625,
            "duration.generateCodeMs": 1500,
            "generateTests.completionTokens": 2048,
            "evaluate.humaneval.passAt1": 0.75,
            "execute.testsPassed": 12,
        },
    )
    result = log(rec, event_file(tmp_path, 4))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"file": str(event_file(tmp_path, 4)), "tags": 12}
    curves = read_curves(tmp_path)
    expected = {
        "reward/code": 0.25,
        "tests/valid_ratio": 0.5,
        "tests/attack_rate": 0.125,
        "mistake_book/tests": 9,
        "code/invalid_rate": 0.375,
        "train/code/loss": -0.5,
        "train/test/kl": 0.001,
        "train/code/clip_fraction": 0.0625,
        "time/generateCode_s": 1.5,
        "tokens/generateTests/completion": 2048,
        "eval/humaneval/pass@1": 0.75,
        "execute/testsPassed": 12,
    }
    assert sorted(curves) == sorted(expected)
    for tag, value in expected.items():
        [(step, stored)] = curves[tag]
        assert step == 4
        # Scalars are stored as 32-bit floats.
        assert stored == pytest.approx(value, rel=1e-6), tag


def test_a_retried_iteration_replaces_its_point_instead_of_adding_one(tmp_path):
    for i, reward in enumerate([0.1, 0.2, 0.3]):
        assert log(record(i, **{"score.codeRewardMean": reward}), event_file(tmp_path, i)).returncode == 0
    # The retry writes the committed record again, to the same file.
    assert log(record(1, **{"score.codeRewardMean": 0.2}), event_file(tmp_path, 1)).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [event_file(tmp_path, i).name for i in range(3)], "no temporary left behind"
    steps = read_curves(tmp_path)["reward/code"]
    assert [s for s, _ in steps] == [0, 1, 2]
    assert [v for _, v in steps] == pytest.approx([0.1, 0.2, 0.3])


def test_absent_values_are_left_out_rather_than_drawn_as_zero(tmp_path):
    # A NaN is stored as null; other programs may write anything into a bucket.
    rec = record(0, **{"train.test.loss": None, "train.code.loss": 0.5, "note": "text", "flag": True})
    assert log(rec, event_file(tmp_path, 0)).returncode == 0
    assert read_curves(tmp_path) == {"train/code/loss": [(0, 0.5)]}


def test_a_stage_summary_that_spells_a_named_tag_keeps_its_own_name_and_the_named_curve(tmp_path):
    rec = record(0, **{"score.codeRewardMean": 0.5, "reward.code": 7, "weird": 1})
    assert log(rec, event_file(tmp_path, 0)).returncode == 0
    assert read_curves(tmp_path) == {"reward/code": [(0, 0.5)], "other/reward.code": [(0, 7)], "other/weird": [(0, 1)]}


@pytest.mark.parametrize("text", ["not json", "[]", '{"iteration": -1, "metrics": {}}', '{"iteration": 1}', '{"iteration": true, "metrics": {}}'])
def test_input_that_is_not_an_iteration_record_exits_2_and_writes_nothing(tmp_path, text):
    out = event_file(tmp_path, 0)
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], input=text, capture_output=True, text=True)
    assert result.returncode == tensorboard_log.BAD_INPUT
    assert "iteration record" in result.stderr
    assert list(tmp_path.iterdir()) == []
