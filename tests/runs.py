"""Specs for whole runs on the tiny models and the shipped NER sample (the run driver's and the stages' tests)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

NER_SAMPLE = REPO / "examples" / "data" / "ner-sample"


def ner_data(**options: Any) -> dict[str, Any]:
    """The data section of the shipped NER sample (``options``: e.g. ``limit``)."""
    return {"reader": "conll", "train": str(NER_SAMPLE / "train.txt"), "validation": str(NER_SAMPLE / "valid.txt"),
            "test": str(NER_SAMPLE / "test.txt"), **options}


def ner_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny-ner",
        "seed": 7,
        "model": str(model_dir),
        "task": {"name": "token-classification", "max_length": 48},
        "data": ner_data(),
        "stages": [
            {"type": "train", "name": "head", "epochs": 1, "batch_size": 8, "train_only": ["classifier.*"],
             "optimizer": {"name": "adamw", "lr": 1e-2}, "logging_steps": 1},
            {"type": "train", "name": "all", "epochs": 2, "batch_size": 8, "logging_steps": 1,
             "optimizer": {"name": "adamw", "lr": 3e-3}, "scheduler": {"name": "linear", "warmup": 0.1}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy"]},
        ],
    }
    spec.update(overrides)
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


class InterruptAt:
    """A callback sending the run a Ctrl-C once ``stage`` reaches optimizer step ``step``."""

    def __init__(self, stage: str, step: int) -> None:
        self.stage, self.step = stage, step

    def on_step_end(self, event: str, data: dict[str, Any]) -> None:
        if data["stage"] == self.stage and data["step"] == self.step:
            signal.raise_signal(signal.SIGINT)


def predict(run_dir: Path, records: list[dict], capsys: pytest.CaptureFixture[str], *options: str) -> list[dict]:
    """What ``hone predict`` prints for ``records`` on the run's model (one JSON object per record)."""
    from hone.cli import main

    path = run_dir.parent / "input.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    capsys.readouterr()
    assert main(["predict", str(run_dir), "--input", str(path), *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]
