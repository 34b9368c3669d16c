"""Search specs on the tiny model and a few sentences of the shipped NER sample: trials take a second or two."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.runs import ner_data, ner_spec
from tests.runs import write_spec as write_run_spec


def search_spec(model_dir: Path, search: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    stages = [{"type": "train", "name": "all", "epochs": 1, "batch_size": 8, "logging_steps": 1,
               "optimizer": {"name": "adamw", "lr": 3e-3}},
              {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy"]}]
    return ner_spec(model_dir, **{"name": "tiny-search", "task": {"name": "token-classification", "max_length": 32},
                                  "data": ner_data(limit=16), "stages": stages, "search": search, **overrides})


def write_spec(directory: Path, spec: dict[str, Any], name: str = "search.yaml") -> Path:
    return write_run_spec(directory, spec, name)


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
