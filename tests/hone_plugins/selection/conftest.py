"""Selection specs on the tiny model and a few sentences of the shipped NER sample: a candidate takes a few seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.runs import ner_data, ner_spec


def selection_spec(model_dir: Path, selection: dict[str, Any]) -> dict[str, Any]:
    stages = [{"type": "train", "name": "all", "epochs": 1, "batch_size": 8, "optimizer": {"name": "adamw", "lr": 3e-3}},
              {"type": "evaluate", "name": "test", "split": "test", "metrics": ["entity-f1", "accuracy"]}]
    return ner_spec(model_dir, name="tiny-selection", task={"name": "token-classification", "max_length": 32},
                    data=ner_data(limit=16), stages=stages, selection=selection)


def two_candidates(model_dir: Path, **objective: Any) -> dict[str, Any]:
    """The tiny BERT as it is and cut to its first layer; a heavy parameter penalty unless ``objective`` changes it."""
    return {
        "candidates": [{"name": "full", "model": str(model_dir)}, {"name": "one-layer", "layers": 1}],
        "objective": {"metric": "test.entity_f1", "penalties": {"parameters_m": 1000.0}, **objective},
        "latency": {"examples": 3, "warmup": 1},
    }


@pytest.fixture
def spec_file(tmp_path: Path, tiny_bert: Path) -> Any:
    """``spec_file(selection)`` writes a selection spec for the tiny model and returns its path."""
    def make(selection: dict[str, Any], name: str = "selection.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(selection_spec(tiny_bert, selection), sort_keys=False))
        return path

    return make
