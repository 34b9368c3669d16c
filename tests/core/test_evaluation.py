"""compute_metrics: every requested metric's results in one dict, nothing silently replaced."""

from __future__ import annotations

from typing import Any

import pytest

from hone.components import EvalOutput
from hone.evaluation import compute_metrics
from hone.plugins import load_plugins

REFS = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
PREDS = [["I-PER", "I-PER", "O", "B-LOC", "I-LOC"]]


def metric(name: str, **params: Any) -> tuple[str, Any]:
    return name, load_plugins(allowed=["metrics"]).registries.get("metric", name).build(params)


def test_both_entity_modes_in_one_evaluation_keep_their_own_results() -> None:
    output = EvalOutput(predictions=PREDS, references=REFS, loss=0.5)
    results = compute_metrics([metric("entity-f1"), metric("entity-f1", mode="strict")], output)
    assert results["entity_f1"] == 1.0  # conlleval: I-PER may open an entity
    assert results["entity_f1_strict"] == pytest.approx(2 / 3)  # strict IOB2: it opens nothing
    assert results["loss"] == 0.5


def test_a_metric_repeating_an_earlier_ones_keys_is_kept_under_a_numbered_name() -> None:
    output = EvalOutput(predictions=[0, 1, 1], references=[0, 1, 0])
    with pytest.warns(UserWarning, match=r"metric 'accuracy' reports accuracy like an earlier metric.*accuracy_2"):
        results = compute_metrics([metric("accuracy"), metric("accuracy")], output)
    assert results["accuracy"] == results["accuracy_2"] == pytest.approx(2 / 3)
