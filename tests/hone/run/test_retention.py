"""Checkpoint retention (``checkpoints: {keep, after_run}``) and the run directory's size in the summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hone.cli import main
from hone.run.checkpoint import Checkpoints, retain
from hone.spec.loading import SpecError, load_spec
from hone_plugins.commands.run import directory_size

from tests.runs import ner_spec, write_spec

EARLY = {"type": "train", "name": "fit", "epochs": 3, "batch_size": 8, "logging_steps": 4, "optimizer": {"name": "adamw", "lr": 1e-3},
         "early_stopping": {"metric": "loss", "patience": 2}}


def test_by_default_a_finished_run_keeps_its_model_not_its_checkpoints(
        tmp_path: Path, tiny_bert: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = write_spec(tmp_path, ner_spec(tiny_bert, device="cpu", stages=[EARLY]))
    run_dir = tmp_path / "run"
    assert main(["run", str(spec_file), "--out", str(run_dir), "--no-report", "-q"]) == 0
    assert not (run_dir / "checkpoints").exists() and (run_dir / "model" / "model.safetensors").exists()
    size = directory_size(run_dir)
    line = capsys.readouterr().out.splitlines()[-1]
    megabytes = f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"
    assert line == f"run directory: {run_dir} ({megabytes})"
    metrics = (run_dir / "metrics.json").read_text()
    assert main(["run", str(spec_file), "--out", str(run_dir), "--resume", "--no-report", "-q"]) == 0  # nothing to redo
    assert (run_dir / "metrics.json").read_text() == metrics
    assert json.loads((run_dir / "state.json").read_text())["status"] == "completed"


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    from hone.run.runner import run

    base = tmp_path_factory.mktemp("kept")
    spec = ner_spec(tiny_bert, device="cpu", stages=[dict(EARLY, checkpoint_steps=2)], checkpoints={"keep": 1, "after_run": "all"})
    parsed, host = load_spec(write_spec(base, spec))
    return run(parsed, host, out=base / "run")


def test_keep_bounds_the_checkpoints_while_the_run_goes_on(kept_run: Path) -> None:
    checkpoints = kept_run / "checkpoints"
    numbered = sorted(p.name for p in checkpoints.iterdir() if p.is_dir())
    assert len(numbered) == 1 and Checkpoints(checkpoints).history() == numbered
    assert (checkpoints / "best-stage0.safetensors").exists()  # after_run: all keeps everything


@pytest.mark.parametrize(("what", "left"), [
    ("last", lambda names, history: names == sorted([*history[-1:], "history.json", "LATEST"])),
    ("best", lambda names, history: names == ["best-stage0.safetensors"]),
    ("all", lambda names, history: "best-stage0.safetensors" in names and history[-1] in names),
    ("none", lambda names, history: names is None),
])
def test_after_run_keeps_what_it_names(kept_run: Path, tmp_path: Path, what: str, left: Any) -> None:
    root = shutil.copytree(kept_run / "checkpoints", tmp_path / "checkpoints")
    history = Checkpoints(root).history()
    retain(root, what)
    names = sorted(p.name for p in root.iterdir()) if root.exists() else None
    assert left(names, history), names
    if what == "last":
        assert Checkpoints(root).latest_good() == root / history[-1]


def test_retention_values_are_checked(tmp_path: Path, tiny_bert: Path) -> None:
    spec = ner_spec(tiny_bert, checkpoints={"keep": 0, "after_run": "newest"})
    with pytest.raises(SpecError) as caught:
        load_spec(write_spec(tmp_path, spec))
    found = {issue.path: issue.message for issue in caught.value.issues}
    assert "greater than or equal to 1" in found["checkpoints.keep"]
    assert "'none', 'last', 'best' or 'all'" in found["checkpoints.after_run"]
