"""The built-in metrics, reached through real plugin discovery, against hand-computed values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from hone.components import EvalOutput
from hone.plugins import PluginHost, load_plugins

NAMES = [
    "accuracy", "bleu", "chrf", "classification-report", "confusion-matrix", "entity-f1", "exact-match", "f1",
    "mse", "pearson", "perplexity", "precision", "recall", "rouge",
]
# the metrics of the optional extra `generation`, with the module each needs
GENERATION_LIBRARIES = {"rouge": "rouge_score", "bleu": "sacrebleu", "chrf": "sacrebleu"}


def skip_without_library(name: str) -> None:
    if name in GENERATION_LIBRARIES:
        module = GENERATION_LIBRARIES[name]
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'hone-ml[generation]')")
SEED_TRUE = [0, 1, 1, 0, 1]
SEED_PRED = [0, 1, 0, 0, 1]


@pytest.fixture(scope="module")
def host() -> PluginHost:
    # Only the metrics entry point: sibling built-in plugins are not this module's concern.
    return load_plugins(allowed=["hone.metrics"])


def compute(
    host: PluginHost, name: str, predictions: list[Any], references: list[Any], **params: Any
) -> dict[str, Any]:
    metric = host.registries.get("metric", name).build(params)
    return metric.compute(EvalOutput(predictions=predictions, references=references))


def test_registered_through_entry_point(host: PluginHost) -> None:
    info = next(p for p in host.plugins if p.name == "hone.metrics")
    assert info.status == "ok", info.error
    assert sorted(info.components["metric"]) == NAMES
    for component in host.registries["metric"]:
        assert component.doc, component.name
        assert component.params.model_config.get("extra") == "forbid", component.name
        assert "results" in component.info, f"{component.name} does not declare its results"


def test_import_is_light() -> None:
    code = (
        "import sys, json, hone_plugins.metrics; "
        "print(json.dumps([m for m in ('sklearn', 'seqeval', 'torch', 'numpy', 'rouge_score', 'sacrebleu', 'nltk') "
        "if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == []


def test_seed_example(host: PluginHost) -> None:
    assert compute(host, "accuracy", SEED_PRED, SEED_TRUE) == {"accuracy": pytest.approx(0.8)}
    binary = {"average": "binary"}
    assert compute(host, "precision", SEED_PRED, SEED_TRUE, **binary) == {"precision": pytest.approx(1.0)}
    assert compute(host, "recall", SEED_PRED, SEED_TRUE, **binary) == {"recall": pytest.approx(2 / 3)}
    assert compute(host, "f1", SEED_PRED, SEED_TRUE, **binary) == {"f1": pytest.approx(0.8)}
    assert compute(host, "f1", SEED_PRED, SEED_TRUE, pos_label=1) == {"f1": pytest.approx(0.8)}


def test_averages(host: PluginHost) -> None:
    # class 0: P=2/3 R=1 F1=0.8 (support 2); class 1: P=1 R=2/3 F1=0.8 (support 3)
    assert compute(host, "precision", SEED_PRED, SEED_TRUE) == {"precision_macro": pytest.approx(5 / 6)}
    assert compute(host, "precision", SEED_PRED, SEED_TRUE, average="weighted") == {
        "precision_weighted": pytest.approx(13 / 15)
    }
    assert compute(host, "recall", SEED_PRED, SEED_TRUE, average="macro") == {"recall_macro": pytest.approx(5 / 6)}
    assert compute(host, "f1", SEED_PRED, SEED_TRUE, average="micro") == {"f1_micro": pytest.approx(0.8)}
    # label 0 is the positive class: P=2/3, R=1
    assert compute(host, "f1", SEED_PRED, SEED_TRUE, pos_label=0) == {"f1": pytest.approx(0.8)}
    assert compute(host, "recall", SEED_PRED, SEED_TRUE, pos_label=0) == {"recall": pytest.approx(1.0)}


def test_string_labels(host: PluginHost) -> None:
    refs, preds = ["pos", "neg", "pos", "pos"], ["pos", "pos", "neg", "pos"]
    # positive 'pos': TP=2 FP=1 FN=1
    assert compute(host, "precision", preds, refs, pos_label="pos") == {"precision": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="pos_label"):
        compute(host, "f1", preds, refs, average="binary")


def test_zero_division(host: PluginHost) -> None:
    # nothing predicted positive: precision is 0/0
    assert compute(host, "precision", [0, 0], [1, 0], average="binary") == {"precision": 0.0}
    assert compute(host, "precision", [0, 0], [1, 0], average="binary", zero_division=1) == {"precision": 1.0}


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("f1", {"average": "macro", "pos_label": 1}),
        ("f1", {"average": "samples"}),
        ("f1", {"beta": 2}),
        ("accuracy", {"normalize": False}),
        ("entity-f1", {"scheme": "IOBES"}),
        ("entity-f1", {"mode": "lenient"}),
        ("classification-report", {"zero_division": 0.5}),
    ],
)
def test_invalid_params(host: PluginHost, name: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        host.registries.get("metric", name).build(params)


def test_token_accuracy(host: PluginHost) -> None:
    preds = [["B-PER", "O"], ["O", "O", "B-LOC"]]
    refs = [["B-PER", "O"], ["O", "B-LOC", "B-LOC"]]
    assert compute(host, "accuracy", preds, refs) == {"accuracy": pytest.approx(4 / 5)}


def test_classification_report(host: PluginHost) -> None:
    result = compute(host, "classification-report", SEED_PRED, SEED_TRUE)
    assert result["classification_report"] == {
        "0": {"precision": pytest.approx(2 / 3), "recall": 1.0, "f1": pytest.approx(0.8), "support": 2},
        "1": {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8), "support": 3},
    }
    assert result["precision_macro"] == pytest.approx(5 / 6)
    assert result["recall_macro"] == pytest.approx(5 / 6)
    assert result["f1_macro"] == pytest.approx(0.8)
    assert result["precision_weighted"] == pytest.approx(13 / 15)
    assert result["recall_weighted"] == pytest.approx(0.8)
    assert result["f1_weighted"] == pytest.approx(0.8)
    assert result["accuracy"] == pytest.approx(0.8)
    assert all(isinstance(v, float) for k, v in result.items() if k != "classification_report")


def test_classification_report_follows_label_names(host: PluginHost) -> None:
    refs, preds = ["b", "a", "c", "a"], ["b", "a", "a", "a"]
    metric = host.registries.get("metric", "classification-report").build({})
    result = metric.compute(EvalOutput(predictions=preds, references=refs, label_names=["c", "b", "a", "unused"]))
    # labels never seen are left out, so the macro average matches the f1 metric's
    assert list(result["classification_report"]) == ["c", "b", "a"]
    assert result["f1_macro"] == pytest.approx(compute(host, "f1", preds, refs)["f1_macro"])


def test_entity_f1_hand_computed(host: PluginHost) -> None:
    refs = [["B-PER", "I-PER", "O", "B-LOC", "O"]]
    preds = [["B-PER", "I-PER", "B-ORG", "O", "B-LOC"]]
    # gold: PER(0-1), LOC(3); predicted: PER(0-1) exact, ORG(2), LOC(4) misplaced
    result = compute(host, "entity-f1", preds, refs)
    assert result["entity_precision"] == pytest.approx(1 / 3)
    assert result["entity_recall"] == pytest.approx(1 / 2)
    assert result["entity_f1"] == pytest.approx(0.4)
    assert result["entity_report"] == {
        "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
        "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }
    assert compute(host, "entity-f1", preds, refs, mode="strict") == {f"{k}_strict": v for k, v in result.items()}


def test_entity_f1_strict_and_conlleval_differ(host: PluginHost) -> None:
    refs = [["B-PER", "I-PER", "O"]]
    preds = [["I-PER", "I-PER", "O"]]
    # conlleval lets I-PER open an entity, PER(0-1), which matches; strict IOB2 finds no entity
    lenient = compute(host, "entity-f1", preds, refs)
    assert (lenient["entity_precision"], lenient["entity_recall"], lenient["entity_f1"]) == (1.0, 1.0, 1.0)
    strict = compute(host, "entity-f1", preds, refs, mode="strict")
    assert (strict["entity_precision_strict"], strict["entity_recall_strict"], strict["entity_f1_strict"]) == (0.0, 0.0, 0.0)
    assert strict["entity_report_strict"]["PER"]["support"] == 1
    # precision is 0/0 in strict mode: zero_division decides it
    assert compute(host, "entity-f1", preds, refs, mode="strict", zero_division=1)["entity_precision_strict"] == 1.0

    refs = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
    preds = [["I-PER", "I-PER", "O", "B-LOC", "I-LOC"]]
    assert compute(host, "entity-f1", preds, refs)["entity_f1"] == 1.0
    strict = compute(host, "entity-f1", preds, refs, mode="strict", scheme="IOB2")
    # strict predicts LOC only: P=1, R=1/2, F1=2/3
    assert strict["entity_precision_strict"] == 1.0
    assert strict["entity_recall_strict"] == pytest.approx(1 / 2)
    assert strict["entity_f1_strict"] == pytest.approx(2 / 3)


def test_entity_f1_type_change_inside_chunk(host: PluginHost) -> None:
    refs = [["B-PER", "O", "B-LOC"]]
    preds = [["B-PER", "I-LOC", "B-LOC"]]
    # conlleval: PER(0), LOC(1) spurious, LOC(2) -> P=2/3, R=1; strict: I-LOC after B-PER opens nothing
    lenient = compute(host, "entity-f1", preds, refs)
    assert lenient["entity_precision"] == pytest.approx(2 / 3)
    assert lenient["entity_recall"] == 1.0
    strict = compute(host, "entity-f1", preds, refs, mode="strict")
    assert strict["entity_precision_strict"] == 1.0
    assert strict["entity_recall_strict"] == 1.0


def test_entity_f1_iobes(host: PluginHost) -> None:
    refs = [["S-PER", "O", "B-LOC", "E-LOC"]]
    preds = [["S-PER", "O", "B-LOC", "I-LOC"]]
    # strict IOBES: B-LOC I-LOC never ends, so only PER is predicted: P=1, R=1/2
    strict = compute(host, "entity-f1", preds, refs, mode="strict", scheme="IOBES")
    assert strict["entity_precision_strict"] == 1.0
    assert strict["entity_recall_strict"] == pytest.approx(1 / 2)
    assert compute(host, "entity-f1", preds, refs)["entity_f1"] == 1.0


def test_entity_f1_no_entities(host: PluginHost) -> None:
    result = compute(host, "entity-f1", [["O", "O"]], [["O", "O"]])
    assert (result["entity_precision"], result["entity_recall"], result["entity_f1"]) == (0.0, 0.0, 0.0)
    assert result["entity_report"] == {}


def test_confusion_matrix(host: PluginHost) -> None:
    refs, preds = ["a", "b", "a", "c"], ["a", "a", "b", "c"]
    assert compute(host, "confusion-matrix", preds, refs) == {
        "confusion_matrix": {"labels": ["a", "b", "c"], "matrix": [[1, 1, 0], [1, 0, 0], [0, 0, 1]]}
    }
    metric = host.registries.get("metric", "confusion-matrix").build({})
    result = metric.compute(EvalOutput(predictions=preds, references=refs, label_names=["c", "b", "a"]))
    assert result == {"confusion_matrix": {"labels": ["c", "b", "a"], "matrix": [[1, 0, 0], [0, 0, 1], [0, 1, 1]]}}
    with pytest.raises(ValueError, match="label_names"):
        metric.compute(EvalOutput(predictions=preds, references=refs, label_names=["a", "b"]))


def test_confusion_matrix_tokens(host: PluginHost) -> None:
    refs = [["B-PER", "O"], ["O"]]
    preds = [["O", "O"], ["O"]]
    assert compute(host, "confusion-matrix", preds, refs) == {
        "confusion_matrix": {"labels": ["B-PER", "O"], "matrix": [[0, 1], [0, 2]]}
    }
    assert json.dumps(compute(host, "confusion-matrix", SEED_PRED, SEED_TRUE))


def test_perplexity(host: PluginHost) -> None:
    metric = host.registries.get("metric", "perplexity").build({})
    assert metric.compute(EvalOutput(predictions=[], references=[], loss=math.log(4.0))) == {
        "perplexity": pytest.approx(4.0)
    }
    assert metric.compute(EvalOutput(predictions=[], references=[], loss=1e6)) == {"perplexity": math.inf}
    with pytest.raises(ValueError, match="loss"):
        metric.compute(EvalOutput(predictions=[], references=[]))


def test_regression(host: PluginHost) -> None:
    assert compute(host, "mse", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == {"mse": pytest.approx(4 / 3)}
    assert compute(host, "pearson", [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == {"pearson": pytest.approx(1.0)}
    assert compute(host, "pearson", [1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == {"pearson": pytest.approx(-1.0)}
    # x = [1, 2, 3], y = [1, 3, 2]: cov sum 1, squares 2 and 2 -> 0.5
    assert compute(host, "pearson", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == {"pearson": pytest.approx(0.5)}
    assert math.isnan(compute(host, "pearson", [1.0, 1.0], [1.0, 2.0])["pearson"])
    with pytest.raises(ValueError, match="numeric"):
        compute(host, "mse", ["a", "b"], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        compute(host, "pearson", [1.0], [1.0])


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_lengths(host: PluginHost, name: str) -> None:
    skip_without_library(name)
    if name == "entity-f1":
        preds, refs = [["O"], ["O"]], [["O"]]
    else:
        preds, refs = [1, 0, 1], [1, 0]
    with pytest.raises(ValueError, match="2 predictions but 1 references|3 predictions but 2 references"):
        compute(host, name, preds, refs)


@pytest.mark.parametrize("name", ["accuracy", "f1", "classification-report", "confusion-matrix", "entity-f1"])
def test_mismatched_tag_lengths(host: PluginHost, name: str) -> None:
    with pytest.raises(ValueError, match="example 1: 1 predicted tags but 2 reference tags"):
        compute(host, name, [["O"], ["O"]], [["O"], ["O", "B-PER"]])


def test_scalars_are_floats(host: PluginHost) -> None:
    for name, preds, refs in [
        ("accuracy", SEED_PRED, SEED_TRUE),
        ("f1", SEED_PRED, SEED_TRUE),
        ("entity-f1", [["B-PER"]], [["B-PER"]]),
        ("mse", [1, 2], [1, 3]),
        ("pearson", [1, 2, 3], [1, 3, 2]),
    ]:
        for key, value in compute(host, name, preds, refs).items():
            assert isinstance(value, (float, dict)), (name, key)
            assert type(value) in (float, dict), (name, key, type(value))


TAGS_PRED = [["B-PER", "I-PER", "O"], ["B-LOC"]]
TAGS_TRUE = [["B-PER", "I-PER", "O"], ["B-ORG"]]
TEXT_PRED = ["the cat sat on the mat", "a dog barked"]
TEXT_TRUE = [["the cat sat on a mat", "a cat was on the mat"], "the dog barked"]
# One case per params variant that changes a metric's result names: (metric, params, predictions, references).
RESULT_CASES: list[tuple[str, dict[str, Any], list[Any], list[Any]]] = [
    ("accuracy", {}, SEED_PRED, SEED_TRUE),
    *[
        (score, params, SEED_PRED, SEED_TRUE)
        for score in ("precision", "recall", "f1")
        for params in ({}, {"average": "binary"}, {"pos_label": 0}, {"average": "micro"}, {"average": "weighted"})
    ],
    ("classification-report", {}, SEED_PRED, SEED_TRUE),
    ("entity-f1", {}, TAGS_PRED, TAGS_TRUE),
    ("entity-f1", {"mode": "strict"}, TAGS_PRED, TAGS_TRUE),
    ("confusion-matrix", {}, SEED_PRED, SEED_TRUE),
    ("perplexity", {}, [], []),
    ("mse", {}, [1.0, 2.0], [1.0, 3.0]),
    ("pearson", {}, [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]),
    ("rouge", {}, TEXT_PRED, TEXT_TRUE),
    ("rouge", {"types": ["rougeLsum", "rouge2"]}, TEXT_PRED, TEXT_TRUE),
    ("bleu", {}, TEXT_PRED, TEXT_TRUE),
    *[("chrf", {"word_order": order}, TEXT_PRED, TEXT_TRUE) for order in (0, 1, 2)],
    ("exact-match", {}, TEXT_PRED, TEXT_TRUE),
    ("exact-match", {}, TAGS_PRED, TAGS_TRUE),
]


def scalar_keys(result: dict[str, Any]) -> set[str]:
    return {key for key, value in result.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}


@pytest.mark.parametrize(("name", "params", "predictions", "references"), RESULT_CASES,
                         ids=[f"{c[0]}-{json.dumps(c[1], sort_keys=True)}" for c in RESULT_CASES])
def test_declared_results_are_the_scalar_results(
    host: PluginHost, name: str, params: dict[str, Any], predictions: list[Any], references: list[Any]
) -> None:
    skip_without_library(name)
    component = host.registries.get("metric", name)
    validated = component.params.model_validate(params)
    result = component.build(validated).compute(EvalOutput(predictions=predictions, references=references, loss=0.5))
    declared = component.results(validated)
    assert set(declared) == scalar_keys(result)
    assert set(declared.values()) <= {"max", "min"}


def test_every_metric_has_a_results_case(host: PluginHost) -> None:
    assert {case[0] for case in RESULT_CASES} == set(host.registries["metric"].names())


def test_declared_directions(host: PluginHost) -> None:
    def results(name: str, **params: Any) -> dict[str, str]:
        component = host.registries.get("metric", name)
        return component.results(component.params.model_validate(params))

    assert results("perplexity") == {"perplexity": "min"}
    assert results("mse") == {"mse": "min"}
    assert results("pearson") == {"pearson": "max"}
    assert results("f1", average="binary") == {"f1": "max"}
    assert results("recall", pos_label="pos") == {"recall": "max"}
    assert results("precision") == {"precision_macro": "max"}
    assert results("entity-f1", mode="strict") == {
        "entity_precision_strict": "max", "entity_recall_strict": "max", "entity_f1_strict": "max"
    }
    assert results("confusion-matrix") == {}
    assert results("rouge", types=["rougeL"]) == {"rougeL": "max"}
    assert results("chrf", word_order=2) == {"chrfpp": "max"}
    assert results("bleu") == {"bleu": "max"}
    assert results("exact-match") == {"exact_match": "max"}
