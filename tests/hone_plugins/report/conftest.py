"""Three real tiny run directories for the report and compare tests (one made by ``hone run`` itself)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "ner-sample"


@dataclass
class TinyRuns:
    dirs: list[Path]
    cli_stdout: str
    cli_stderr: str


def tiny_spec(model: Path, name: str, lr: float, epochs: int) -> dict[str, Any]:
    return {
        "name": name, "seed": 3, "model": str(model), "task": {"name": "token-classification", "max_length": 48},
        "data": {"reader": "conll", "train": str(SAMPLE / "train.txt"), "validation": str(SAMPLE / "valid.txt"),
                 "test": str(SAMPLE / "test.txt"), "limit": 32},
        "stages": [
            {"type": "train", "name": "fit", "epochs": epochs, "batch_size": 16, "logging_steps": 1,
             "optimizer": {"name": "adamw", "lr": lr}, "scheduler": {"name": "linear", "warmup": 0.25}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy", "confusion-matrix"]},
        ],
    }


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> TinyRuns:
    """run-a through the CLI (progress in plain mode, report at the end), run-b and run-c through ``run()``."""
    from hone.cli import main
    from hone.run.runner import run
    from hone.spec.loading import load_spec

    base = tmp_path_factory.mktemp("tiny-runs")
    settings = [("run-a", 5e-3, 2), ("run-b", 1e-2, 1), ("run-c", 1e-4, 1)]  # 32 sentences: 2 steps an epoch
    dirs = []
    stdout, stderr = io.StringIO(), io.StringIO()
    for i, (name, lr, epochs) in enumerate(settings):
        spec_file = base / f"{name}.yaml"
        spec_file.write_text(yaml.safe_dump(tiny_spec(tiny_bert, name, lr, epochs)))
        if i == 0:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                assert main(["run", str(spec_file), "--out", str(base / name)]) == 0
        else:
            spec, host = load_spec(spec_file)
            run(spec, host, out=base / name)
        dirs.append(base / name)
    return TinyRuns(dirs, stdout.getvalue(), stderr.getvalue())
