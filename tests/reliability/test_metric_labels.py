"""A metric parameter the data's labels cannot match is refused after the data is read, before the first step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.errors import HoneError
from hone.run.runner import run
from hone.spec.loading import load_spec

from .helpers import read_json, write_spec

SENTIMENT = Path(__file__).resolve().parents[2] / "examples" / "data" / "sentiment-sample.tsv"


def sentiment_spec(model: Path, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "labels", "seed": 3, "model": str(model), "device": "cpu",
        "task": {"name": "sequence-classification", "max_length": 32},
        "data": {"reader": "tsv", "train": str(SENTIMENT), "validation": str(SENTIMENT), "test": str(SENTIMENT), "limit": 8},
        "stages": [{"type": "train", "name": "fit", "epochs": 1, "batch_size": 8, "metrics": ["accuracy"]},
                   {"type": "evaluate", "name": "test", "split": "test", "metrics": ["accuracy", metric]}],
    }


def test_an_integer_pos_label_for_string_labels_is_refused_before_the_first_step(tiny_bert: Path, tmp_path: Path) -> None:
    spec, host = load_spec(write_spec(tmp_path, sentiment_spec(tiny_bert, {"name": "f1", "pos_label": 1})))
    with pytest.raises(HoneError) as caught:
        run(spec, host, out=tmp_path / "run")
    message = str(caught.value)
    assert message.startswith("stage 'test': metric 'f1': pos_label 1 is not a label of the data; valid labels: '0', '1'")
    assert "pos_label: '1'" in message
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())
    assert read_json(tmp_path / "run" / "state.json")["completed"] == []
    fixed, host = load_spec(write_spec(tmp_path, sentiment_spec(tiny_bert, {"name": "f1", "pos_label": "1"})))
    run(fixed, host, out=tmp_path / "run")  # the folder of a run that failed before any work is reused
    assert 0.0 <= read_json(tmp_path / "run" / "metrics.json")["test"]["test"]["f1"] <= 1.0
