"""Search specs on the tiny model and a few sentences of the shipped NER sample: trials take a second or two."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runs import NER_SAMPLE


def search_spec(model_dir: Path, search: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny-search",
        "seed": 7,
        "model": str(model_dir),
        "task": {"name": "token-classification", "max_length": 32},
        "data": {"reader": "conll", "train": str(NER_SAMPLE / "train.txt"), "validation": str(NER_SAMPLE / "valid.txt"),
                 "test": str(NER_SAMPLE / "test.txt"), "limit": 16},
        "stages": [
            {"type": "train", "name": "all", "epochs": 1, "batch_size": 8, "logging_steps": 1,
             "optimizer": {"name": "adamw", "lr": 3e-3}},
            {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]},
        ],
        "search": search,
    }
    spec.update(overrides)
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "search.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def hone_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def hone_search(spec_file: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hone", "search", str(spec_file), "--out", str(out), *args]


@pytest.fixture
def spec_file(tmp_path: Path, tiny_bert: Path) -> Any:
    """``spec_file(search, **overrides)`` writes a search spec for the tiny model and returns its path."""
    def make(search: dict[str, Any], **overrides: Any) -> Path:
        return write_spec(tmp_path, search_spec(tiny_bert, search, **overrides))

    return make
