"""What a run tells its terminal: each evaluation's metrics, early stopping, restored weights, resuming, a progress
bar while evaluating, and a compress stage's size, parameters and latency before and after."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hone.cli import main
from hone.errors import Interrupted
from hone_plugins.stages.evaluation import predict_split
from hone.run.events import read_events
from hone.run.runner import run
from hone.spec.loading import load_spec
from hone_plugins.commands.plainlog import PlainLog

from tests.hone_plugins.stages.test_generative_evaluation import FEATURES, FakeTask, context

from tests.runs import ner_spec, write_spec


def test_each_epoch_prints_its_evaluation_then_early_stopping_and_the_restored_weights(
        tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = ner_spec(tiny_bert, device="cpu")
    spec["stages"] = [{
        "type": "train", "name": "fit", "epochs": 6, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 1e-9},
        "early_stopping": {"metric": "loss", "patience": 1, "min_delta": 0.5},
    }]
    assert main(["run", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    lines = capsys.readouterr().err.splitlines()
    epochs = [line for line in lines if line.startswith("[fit] epoch")]
    assert len(epochs) == 2 and all("validation: loss " in line for line in epochs)
    stopped = lines.index(next(line for line in lines if "early stopping" in line))
    assert lines[stopped - 1] == epochs[1]
    assert lines[stopped].startswith("[fit] early stopping: loss has not improved on ")
    assert "for 1 evaluation(s) (patience 1)" in lines[stopped]
    assert lines[stopped + 1].startswith("[fit] restored the best weights (loss ")
    assert lines[stopped + 2].startswith("[fit] done in ")


class StopAtStep:
    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        if data["stage"] == "all" and data["step"] == 4:  # after the checkpoint at step 3
            raise Interrupted("stopped by the test")


def test_a_resumed_stage_says_at_which_step(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert, device="cpu")
    spec["stages"][1]["checkpoint_steps"] = 3
    parsed, host = load_spec(write_spec(tmp_path, spec))
    with pytest.raises(Interrupted):
        run(parsed, host, out=tmp_path / "run", callbacks=[("stop", StopAtStep())])
    stream = io.StringIO()
    run(parsed, host, out=tmp_path / "run", resume=True, callbacks=[("plain-log", PlainLog(stream))])
    assert "[all] train resumed at step 3 of 16 steps" in stream.getvalue().splitlines()


class Bars:
    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []
        self.advanced = self.closed = 0

    def __call__(self, description: str, total: int, completed: int = 0) -> Bars:
        self.made.append((description, total))
        return self

    def advance(self, loss: float | None = None) -> None:
        self.advanced += 1

    def close(self) -> None:
        self.closed += 1


def test_evaluation_advances_a_progress_bar_per_batch() -> None:
    ctx = context(FakeTask())
    ctx.progress = bars = Bars()
    predict_split(ctx, FEATURES, batch_size=2, description="evaluating validation")
    assert bars.made == [("evaluating validation", 2)] and bars.advanced == 2 and bars.closed == 1


def test_a_compress_stage_summary_shows_size_parameters_and_latency(
        tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = ner_spec(tiny_bert, device="cpu")
    spec["stages"] = [spec["stages"][0], {"type": "compress", "name": "squeeze", "compressor": "dynamic-int8"}]
    assert main(["run", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "run"), "--no-report", "-q"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("squeeze:"))
    assert line.startswith("squeeze: dynamic-int8: size ") and (" kB -> " in line or " MB -> " in line)
    assert "parameters " in line and " -> " in line and "ms per example" in line
    assert "sparsity" not in out  # the before/after reports are summarised, not printed as splits
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())["squeeze"]["after"]
    assert f"{after['parameters']:,}" in line and "latency_ms" not in after  # wall-clock: metrics.json stays reproducible
    (done,) = [e for e in read_events(tmp_path / "run" / "events.jsonl") if e["event"] == "compression_done"]
    assert done["before"]["latency_ms"] > 0 and done["after"]["latency_ms"] > 0
    assert f"latency {done['before']['latency_ms']:.3g} -> {done['after']['latency_ms']:.3g} ms per example" in line
