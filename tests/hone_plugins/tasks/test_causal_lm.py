"""The causal-lm task on text records: next-token loss, sliding-window perplexity, generation."""

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

    task = build(max_length=8)
    assert task.labels_from([{"text": "x"}]) == [] and task.default_metrics == ("perplexity",)
    _, tokenizer = task.load(str(tiny_gpt2), [])
    features = task.encode([{"text": TEXTS[1]}, {"text": "paris"}], tokenizer, [])
    ids = tokenizer(TEXTS[1])["input_ids"]  # [CLS] mary was in london [SEP]: one window
    assert features[0]["input_ids"] == features[0]["labels"] == ids and features[0]["length"] == len(ids) == 6
    assert "token_type_ids" not in features[0] and not any(k.startswith("_") for k in features[0])
    batch = task.collate(features, tokenizer)
    width = batch["input_ids"].shape[1]
    assert width == 8  # padded to a multiple of 8
    assert batch["labels"][1].tolist() == features[1]["input_ids"] + [-100] * (width - len(features[1]["input_ids"]))
    assert batch["input_ids"][1, -1].item() == tokenizer.pad_token_id and batch["input_ids"].dtype == torch.long
    with pytest.raises(DataError, match="corpus.jsonl:2"):
        task.encode([{"input": "x", "_source": "corpus.jsonl", "_line": 2}], tokenizer, [])


def test_long_texts_are_scored_in_sliding_windows(tiny_gpt2: Path) -> None:
    task = build(max_length=4, stride=2)
    _, tokenizer = task.load(str(tiny_gpt2), [])
    ids = tokenizer(TEXTS[0])["input_ids"]  # 11 tokens
    features = task.encode([{"text": TEXTS[0]}], tokenizer, [])
    assert [f["input_ids"] for f in features] == [ids[0:4], ids[2:6], ids[4:8], ids[6:10], ids[7:11]]
    scored = [[f["input_ids"][k] for k, label in enumerate(f["labels"]) if label != -100][1 if i == 0 else 0 :]
              for i, f in enumerate(features)]  # the first window's first token has no context: the loss shifts it out
    assert sum(scored, []) == ids[1:]  # every token after the first counted exactly once
    for feature in features[1:]:
        assert feature["labels"][0] == -100 and len(feature["input_ids"]) == 4  # the scored ones keep context
    assert [f["input_ids"] for f in build(max_length=4, stride=3).encode([{"text": TEXTS[0]}], tokenizer, [])] == [
        ids[0:4], ids[3:7], ids[6:10], ids[7:11]]
    with pytest.raises(ValueError, match="stride"):
        build(max_length=4, stride=4)


def test_windows_count_each_token_once_with_up_to_max_length_context() -> None:
    from hone_plugins.tasks.lm_data import windows

    for length in range(1, 30):
        for max_length in range(2, 9):
            for stride in range(1, max_length):
                spans = windows(length, max_length, stride)
                scored = [t for begin, end, first in spans for t in range(max(first, begin + 1), end)]
                assert scored == list(range(1, length)), (length, max_length, stride)
                for begin, end, first in spans:
                    assert end - begin <= max_length and (begin == 0 or first - begin >= max_length - stride)


def test_sliding_window_perplexity_equals_full_context_when_the_text_fits(tiny_gpt2: Path) -> None:
    import torch

    text = " ".join(TEXTS * 3)
    fits, windowed = build(max_length=128, stride=8), build(max_length=16, stride=8)
    model, tokenizer = fits.load(str(tiny_gpt2), [])
    model.eval()
    ids = tokenizer(text)["input_ids"]
    assert 16 < len(ids) <= 128
    batch = fits.collate(fits.encode([{"text": text}], tokenizer, []), tokenizer)
    assert batch["input_ids"][0, : len(ids)].tolist() == ids
    with torch.no_grad():
        full_context = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
        assert torch.allclose(fits.loss(model(**inputs(batch)), batch), full_context)
        windows = windowed.collate(windowed.encode([{"text": text}], tokenizer, []), tokenizer)
        assert windows["input_ids"].shape[0] > 1 and int((windows["labels"][:, 1:] != -100).sum()) == len(ids) - 1
        assert not torch.isclose(windowed.loss(model(**inputs(windows)), windows), full_context)  # less context


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
    results = task.predict(model, tokenizer, records, [], {"max_new_tokens": 10, "num_beams": None})
    assert [r["generated"] for r in results] == ["smith lives in paris", "in london"]
    assert [r["prediction"] for r in results] == ["smith lives in paris", "in london"]
    sampling = {"max_new_tokens": 3, "do_sample": True, "top_k": 5, "temperature": 0.7}
    sampled = task.predict(model, tokenizer, records[:1], [], sampling)
    assert isinstance(sampled[0]["generated"], str)
    with pytest.raises(ValueError, match=r"record 0.*'messages' or 'prompt' or 'text'"):
        task.predict(model, tokenizer, [{"input": "x"}], [], {})
