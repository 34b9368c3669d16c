"""The sequence-classification and sequence-regression tasks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hone.errors import DataError
from hone.plugins import load_plugins

TRAIN = [
    {"text": "a good movie", "label": "pos"},
    {"text": "a great film", "label": "pos"},
    {"text": "a bad movie", "label": "neg"},
    {"text": "a terrible film", "label": "neg"},
]
LABELS = ["neg", "pos"]


def build(name: str = "sequence-classification", **params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", name).build(params)


def inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}


@pytest.fixture(scope="module")
def trained(tiny_bert: Path) -> tuple[Any, Any, Any]:
    import torch

    task = build(max_length=16)
    model, tokenizer = task.load(str(tiny_bert), LABELS)
    torch.manual_seed(0)
    batch = task.collate(task.encode(TRAIN, tokenizer, LABELS), tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(60):
        loss = task.loss(model(**inputs(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return task, model, tokenizer


def test_labels_from_sorts_numeric_labels_numerically() -> None:
    task = build()
    assert task.labels_from([{"text": "x", "label": v} for v in ("10", "2", 1, "2")]) == ["1", "2", "10"]
    assert task.labels_from(TRAIN) == LABELS
    assert task.default_metrics == ("accuracy", "f1")
    assert build("sequence-regression").labels_from(TRAIN) == []
    assert build("sequence-regression").default_metrics == ("mse", "pearson")


def test_encode_texts_and_pairs(tiny_bert: Path) -> None:
    task = build(max_length=5)
    _, tokenizer = task.load(str(tiny_bert), LABELS)
    examples = [{"text": "a good movie", "label": "pos"}, {"text": "a film", "text_pair": "very bad", "label": "neg"}]
    single, pair = task.encode(examples, tokenizer, LABELS)
    assert tokenizer.convert_ids_to_tokens(single["input_ids"]) == ["[CLS]", "a", "good", "movie", "[SEP]"]
    assert (single["labels"], single["_label"], single["length"]) == (1, "pos", 5)
    assert len(pair["input_ids"]) == 5 and sum(pair["token_type_ids"]) > 0
    assert pair["labels"] == 0 and pair["_label"] == "neg"


def test_bad_labels_are_data_errors(tiny_bert: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_bert), LABELS)
    with pytest.raises(DataError, match=r"dev\.tsv:3: .*'neutral'.*neg, pos"):
        task.encode([{"text": "meh", "label": "neutral", "_source": "dev.tsv", "_line": 3}], tokenizer, LABELS)
    with pytest.raises(DataError, match="neutral"):
        task.encode([{"text": "meh", "label": "neutral"}], tokenizer, LABELS)
    with pytest.raises(DataError, match="not a number"):
        build("sequence-regression").encode([{"text": "meh", "label": "high"}], tokenizer, [])


def test_collate_loss_and_label_smoothing(tiny_bert: Path) -> None:
    import torch

    task = build()
    model, tokenizer = task.load(str(tiny_bert), LABELS)
    model.eval()
    batch = task.collate(task.encode(TRAIN[:1] + [{"text": "a", "label": "neg"}], tokenizer, LABELS), tokenizer)
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    width = batch["attention_mask"].shape[1]
    assert width % 8 == 0 and batch["attention_mask"][1].tolist() == [1, 1, 1] + [0] * (width - 3)
    assert batch["_label"] == ["pos", "neg"]
    outputs = model(**inputs(batch))
    loss = task.loss(outputs, batch)
    assert torch.allclose(loss, model(**inputs(batch), labels=batch["labels"]).loss)
    confident = SimpleNamespace(logits=torch.tensor([[-2.0, 3.0], [1.0, 0.5]]))
    assert not torch.isclose(task.loss(confident, batch, label_smoothing=0.3), task.loss(confident, batch))
    loss.backward()
    predictions, references, scores = task.decode(outputs, batch, LABELS)
    assert set(predictions) <= set(LABELS) and references == ["pos", "neg"]
    assert [len(s) for s in scores] == [2, 2] and sum(scores[0]) == pytest.approx(1.0)


def test_overfits_and_predicts(trained: tuple[Any, Any, Any]) -> None:
    task, model, tokenizer = trained
    results = task.predict(model, tokenizer, [{"text": e["text"]} for e in TRAIN], LABELS, {"batch_size": 3})
    assert [r["label"] for r in results] == [e["label"] for e in TRAIN]
    for result in results:
        assert result["score"] == max(result["probabilities"].values()) > 0.5
        assert set(result["probabilities"]) == set(LABELS)
    with pytest.raises(ValueError, match=r"record 1.*'text'"):
        task.predict(model, tokenizer, [{"text": "a"}, {"label": "pos"}], LABELS, {})


def test_reload_saved_model_restores_labels(trained: tuple[Any, Any, Any], tmp_path: Path) -> None:
    task, model, tokenizer = trained
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded, reloaded_tokenizer = task.load(str(tmp_path), [])
    assert reloaded.config.id2label == {0: "neg", 1: "pos"}
    records = [{"text": e["text"]} for e in TRAIN]
    results = task.predict(reloaded, reloaded_tokenizer, records, [], {})
    assert [r["label"] for r in results] == [e["label"] for e in TRAIN]


def test_regression_loss_is_mse(tiny_bert: Path) -> None:
    import torch

    task = build("sequence-regression")
    model, tokenizer = task.load(str(tiny_bert), [])
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    examples = [{"text": "a good movie", "label": "4.5"}, {"text": "a bad film", "label": 1}]
    batch = task.collate(task.encode(examples, tokenizer, []), tokenizer)
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [4.5, 1.0]
    outputs = model(**inputs(batch))
    loss = task.loss(outputs, batch)
    expected = ((outputs.logits.squeeze(-1) - torch.tensor([4.5, 1.0])) ** 2).mean()
    assert torch.allclose(loss, expected)
    assert torch.allclose(task.loss(outputs, batch, label_smoothing=0.5), loss)
    loss.backward()
    predictions, references, scores = task.decode(outputs, batch, [])
    assert references == [4.5, 1.0] and scores == [None, None]
    assert predictions == pytest.approx(outputs.logits.squeeze(-1).tolist())
    results = task.predict(model, tokenizer, [{"text": "a good movie"}, {"text": "a", "text_pair": "film"}], [], {})
    assert [set(r) for r in results] == [{"score"}, {"score"}]
    assert results[0]["score"] == pytest.approx(predictions[0], abs=1e-5)
