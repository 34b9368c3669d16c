"""compute_metrics: every requested metric's results in one dict, nothing silently replaced."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hone.components import EvalOutput
from hone.plugins import load_plugins
from hone_plugins.stages.evaluation import compute_metrics

REFS = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
PREDS = [["I-PER", "I-PER", "O", "B-LOC", "I-LOC"]]


def metric(name: str, **params: Any) -> tuple[str, Any]:
    return name, load_plugins(allowed=["hone.metrics"]).registries.get("metric", name).build(params)


def test_both_entity_modes_in_one_evaluation_keep_their_own_results() -> None:
    output = EvalOutput(predictions=PREDS, references=REFS, loss=0.5)
    results = compute_metrics([metric("entity-f1"), metric("entity-f1", mode="strict")], output)
    assert results["entity_f1"] == 1.0  # conlleval: I-PER may open an entity
    assert results["entity_f1_strict"] == pytest.approx(2 / 3)  # strict IOB2: it opens nothing
    assert results["loss"] == 0.5


def test_a_metric_reporting_an_earlier_ones_name_otherwise_is_kept_under_a_numbered_name() -> None:
    output = EvalOutput(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0])
    with pytest.warns(UserWarning, match=r"metric 'f1' reports f1 like an earlier metric.*kept as f1_2"):
        results = compute_metrics([metric("f1", pos_label=1), metric("f1", pos_label=0)], output)
    assert results["f1"] == pytest.approx(2 / 3) and results["f1_2"] == pytest.approx(0.8)


def test_the_same_value_reported_twice_is_kept_once_without_a_warning() -> None:
    output = EvalOutput(predictions=[0, 1, 1], references=[0, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = compute_metrics([metric("accuracy"), metric("classification-report")], output)
    assert results["accuracy"] == pytest.approx(2 / 3) and "accuracy_2" not in results
