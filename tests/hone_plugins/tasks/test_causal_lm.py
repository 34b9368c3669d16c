"""The causal-lm task: next-token loss and generation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hone.errors import DataError
from hone.plugins import load_plugins

TEXTS = ["john smith lives in paris", "mary was in london"]


def build(**params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", "causal-lm").build(params)


def inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}


def test_encode_collate_and_metadata(tiny_gpt2: Path) -> None:
    import torch

    task = build(max_length=4)
    assert task.labels_from([{"text": "x"}]) == [] and task.default_metrics == ("perplexity",)
    _, tokenizer = task.load(str(tiny_gpt2), [])
    features = task.encode([{"text": TEXTS[0]}, {"text": "paris"}], tokenizer, [])
    assert features[0]["labels"] == features[0]["input_ids"] and features[0]["length"] == 4
    assert "token_type_ids" not in features[0]
    batch = task.collate(features, tokenizer)
    width = batch["input_ids"].shape[1]
    assert width == 8  # padded to a multiple of 8
    assert batch["labels"][1].tolist() == features[1]["input_ids"] + [-100] * (width - len(features[1]["input_ids"]))
    assert batch["input_ids"][1, -1].item() == tokenizer.pad_token_id and batch["input_ids"].dtype == torch.long
    with pytest.raises(DataError, match="corpus.jsonl:2"):
        task.encode([{"prompt": "x", "_source": "corpus.jsonl", "_line": 2}], tokenizer, [])


def test_loss_matches_the_models_own_loss(tiny_gpt2: Path) -> None:
    import torch

    task = build()
    model, tokenizer = task.load(str(tiny_gpt2), [])
    model.eval()
    batch = task.collate(task.encode([{"text": TEXTS[0]}], tokenizer, []), tokenizer)
    outputs = model(**inputs(batch))
    loss = task.loss(outputs, batch)
    assert torch.allclose(loss, model(**inputs(batch), labels=batch["labels"]).loss)
    padded = task.collate(task.encode([{"text": t} for t in TEXTS], tokenizer, []), tokenizer)
    padded_outputs = model(**inputs(padded))
    assert torch.allclose(task.loss(padded_outputs, padded), model(**inputs(padded), labels=padded["labels"]).loss)
    assert not torch.isclose(task.loss(outputs, batch, label_smoothing=0.1), loss)
    loss.backward()
    assert task.decode(outputs, batch, []) == ([], [], [])


def test_predict_generates_continuations(tiny_gpt2: Path) -> None:
    import torch

    task = build()
    model, tokenizer = task.load(str(tiny_gpt2), [])
    torch.manual_seed(0)
    batch = task.collate(task.encode([{"text": t} for t in TEXTS], tokenizer, []), tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(100):
        loss = task.loss(model(**inputs(batch)), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    records = [{"prompt": "john"}, {"text": "mary was"}]
    results = task.predict(model, tokenizer, records, [], {"max_new_tokens": 10})
    assert results == [{"generated": "smith lives in paris"}, {"generated": "in london"}]
    sampling = {"max_new_tokens": 3, "do_sample": True, "top_k": 5, "temperature": 0.7}
    sampled = task.predict(model, tokenizer, records[:1], [], sampling)
    assert isinstance(sampled[0]["generated"], str)
    with pytest.raises(ValueError, match=r"record 0.*'prompt' or 'text'"):
        task.predict(model, tokenizer, [{"input": "x"}], [], {})
