"""Specs for end-to-end runs on the tiny model and the shipped NER sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NER_SAMPLE = REPO / "examples" / "data" / "ner-sample"


def ner_spec(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny-ner",
        "seed": 7,
        "model": str(model_dir),
        "task": {"name": "token-classification", "max_length": 48},
        "data": {
            "reader": "conll",
            "train": str(NER_SAMPLE / "train.txt"),
            "validation": str(NER_SAMPLE / "valid.txt"),
            "test": str(NER_SAMPLE / "test.txt"),
        },
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


def write_spec(directory: Path, spec: dict[str, Any]) -> Path:
    path = directory / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture
def ner_spec_file(tmp_path: Path, tiny_bert: Path) -> Path:
    return write_spec(tmp_path, ner_spec(tiny_bert))
