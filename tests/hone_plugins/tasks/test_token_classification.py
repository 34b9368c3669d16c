"""The token-classification task: alignment, padding, loss, decoding and span prediction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hone.errors import DataError
from hone.plugins import load_plugins

TASKS = ("token-classification", "sequence-classification", "sequence-regression", "causal-lm", "seq2seq")
LABELS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
TRAIN = [
    {"tokens": "john smith lives in paris".split(), "tags": ["B-PER", "I-PER", "O", "O", "B-LOC"]},
    {"tokens": "mary was in london .".split(), "tags": ["B-PER", "O", "O", "B-LOC", "O"]},
    {"tokens": "peter blackburn said".split(), "tags": ["B-PER", "I-PER", "O"]},
]


def build(name: str = "token-classification", **params: Any) -> Any:
    return load_plugins(warn=False).registries.get("task", name).build(params)


def train(task: Any, model: Any, tokenizer: Any, examples: list[dict[str, Any]], steps: int, lr: float = 5e-3) -> None:
    import torch

    torch.manual_seed(0)
    batch = task.collate(task.encode(examples, tokenizer, task_labels(model)), tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        outputs = model(**{k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"})
        loss = task.loss(outputs, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def task_labels(model: Any) -> list[str]:
    return [model.config.id2label[i] for i in range(model.config.num_labels)]


@pytest.fixture(scope="module")
def trained(tiny_bert: Path) -> tuple[Any, Any, Any]:
    task = build(max_length=32)
    model, tokenizer = task.load(str(tiny_bert), LABELS)
    train(task, model, tokenizer, TRAIN, steps=120)
    return task, model, tokenizer


def test_tasks_register_without_importing_torch() -> None:
    code = "import sys, hone_plugins.tasks; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    registry = load_plugins(warn=False).registries["task"]
    for name in TASKS:
        assert registry.get(name).doc
    with pytest.raises(ValidationError):
        registry.get("token-classification").params.model_validate({"max_lenght": 3})
    with pytest.raises(ValidationError):
        registry.get("token-classification").params.model_validate({"max_length": 0})


def test_labels_from_puts_o_first() -> None:
    assert build().labels_from(TRAIN) == ["O", "B-LOC", "B-PER", "I-PER"]
    assert build().default_metrics == ("entity-f1",)


def test_first_subtoken_and_all_subtoken_alignment(tiny_bert: Path) -> None:
    example = {"tokens": ["blackburnish", "paris"], "tags": ["B-PER", "B-LOC"]}
    first = build()
    _, tokenizer = first.load(str(tiny_bert), LABELS)
    assert len(tokenizer) > 100, "the tiny_bert fixture's tokenizer lost its vocabulary: every word is [UNK]"
    assert tokenizer.convert_ids_to_tokens(first.encode([example], tokenizer, LABELS)[0]["input_ids"]) == [
        "[CLS]", "blackburn", "##i", "##s", "##h", "paris", "[SEP]"
    ]
    per, loc, i_per, pad = LABELS.index("B-PER"), LABELS.index("B-LOC"), LABELS.index("I-PER"), -100
    feature = first.encode([example], tokenizer, LABELS)[0]
    assert feature["labels"] == [pad, per, pad, pad, pad, loc, pad]
    assert feature["_word_ids"] == [None, 0, 0, 0, 0, 1, None]
    assert feature["_tags"] == ["B-PER", "B-LOC"]
    assert feature["length"] == 7 and len(feature["attention_mask"]) == 7 and "token_type_ids" in feature
    every = build(label_all_tokens=True).encode([example], tokenizer, LABELS)[0]
    assert every["labels"] == [pad, per, i_per, i_per, i_per, loc, pad]


def test_unknown_tag_is_a_data_error(tiny_bert: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_bert), LABELS)
    located = {"tokens": ["paris"], "tags": ["B-GPE"], "_source": "train.txt", "_line": 7}
    with pytest.raises(DataError, match=r"train\.txt:7: .*'B-GPE'.*B-LOC"):
        task.encode([located], tokenizer, LABELS)
    with pytest.raises(DataError, match="B-GPE"):
        task.encode([{"tokens": ["paris"], "tags": ["B-GPE"]}], tokenizer, LABELS)


def test_a_conll_validation_tag_not_in_training_names_its_file_and_line(tiny_bert: Path, tmp_path: Path) -> None:
    conll = load_plugins(warn=False).registries.get("reader", "conll").build({})
    (tmp_path / "train.txt").write_text("john B-PER\nlives O\n\nin O\nparis B-LOC\n")
    (tmp_path / "valid.txt").write_text("-DOCSTART- O\n\nmary B-PER\n\nthe O\nolympics B-EVENT\n")
    task = build()
    labels = task.labels_from(conll.read(tmp_path / "train.txt"))
    _, tokenizer = task.load(str(tiny_bert), labels)
    with pytest.raises(DataError) as caught:
        task.encode(conll.read(tmp_path / "valid.txt"), tokenizer, labels)
    assert str(caught.value).startswith(f"{tmp_path / 'valid.txt'}:6: unknown label 'B-EVENT'")
    assert "B-LOC" in str(caught.value)


def test_collate_pads_dynamically_with_minus_100(tiny_bert: Path) -> None:
    task = build()
    _, tokenizer = task.load(str(tiny_bert), LABELS)
    features = task.encode(TRAIN[:2] + [{"tokens": ["paris"], "tags": ["B-LOC"]}], tokenizer, LABELS)
    batch = task.collate(features, tokenizer)
    longest = max(feature["length"] for feature in features)
    width = -(-longest // 8) * 8  # padded to the longest, rounded up to a multiple of 8
    assert longest > 3 and features[2]["length"] == 3
    assert batch["input_ids"].shape == (3, width) == batch["labels"].shape == batch["token_type_ids"].shape
    assert batch["input_ids"][2, 3:].tolist() == [tokenizer.pad_token_id] * (width - 3)
    assert batch["attention_mask"][2].tolist() == [1, 1, 1] + [0] * (width - 3)
    assert batch["labels"][2].tolist() == [-100, LABELS.index("B-LOC"), -100] + [-100] * (width - 3)
    assert batch["_tags"][2] == ["B-LOC"] and "length" not in batch


def test_loss_backward_and_label_smoothing(tiny_bert: Path) -> None:
    import torch

    task = build()
    model, tokenizer = task.load(str(tiny_bert), LABELS)
    model.eval()
    batch = task.collate(task.encode(TRAIN, tokenizer, LABELS), tokenizer)
    outputs = model(**{k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"})
    loss = task.loss(outputs, batch)
    assert torch.isfinite(loss)
    assert torch.allclose(loss, model(**{k: v for k, v in batch.items() if not k.startswith("_")}).loss)
    assert not torch.isclose(task.loss(outputs, batch, label_smoothing=0.2), loss)
    loss.backward()
    assert model.classifier.weight.grad is not None


def test_decode_covers_every_word_when_truncated(tiny_bert: Path) -> None:
    task = build(max_length=6)
    model, tokenizer = task.load(str(tiny_bert), LABELS)
    examples = [TRAIN[0], {"tokens": ["blackburnish", "paris", "in"], "tags": ["B-PER", "B-LOC", "O"]}]
    batch = task.collate(task.encode(examples, tokenizer, LABELS), tokenizer)
    assert batch["input_ids"].shape[1] == 8  # 6 tokens padded to a multiple of 8
    outputs = model(**{k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"})
    predictions, references, scores = task.decode(outputs, batch, LABELS)
    assert [len(p) for p in predictions] == [5, 3] == [len(s) for s in scores]
    assert references == [TRAIN[0]["tags"], examples[1]["tags"]]
    assert predictions[0][4] == "O" and predictions[1][1:] == ["O", "O"]
    assert all(tag in LABELS for tag in predictions[0])


def test_predict_finds_spans_with_character_offsets(trained: tuple[Any, Any, Any]) -> None:
    task, model, tokenizer = trained
    texts = ["john smith lives in paris", "Mary was in London."]
    results = task.predict(model, tokenizer, [{"text": t} for t in texts] + [{"tokens": TRAIN[2]["tokens"]}], [], {})
    for text, result in zip(texts, results):
        for entity in result["entities"]:
            assert entity["text"] == text[entity["start"] : entity["end"]]
            assert 0.0 < entity["score"] <= 1.0
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in results[0]["entities"]] == [
        ("PER", "john smith", 0, 10), ("LOC", "paris", 20, 25)
    ]
    assert results[0]["tags"] == TRAIN[0]["tags"]
    assert [(e["type"], e["text"], e["start"]) for e in results[1]["entities"]] == [
        ("PER", "Mary", 0), ("LOC", "London", 12)
    ]
    assert results[1]["tokens"] == ["Mary", "was", "in", "London", "."]
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in results[2]["entities"]] == [
        ("PER", "peter blackburn", 0, 15)
    ]


def test_predict_options_and_bad_records(trained: tuple[Any, Any, Any]) -> None:
    task, model, tokenizer = trained
    record = [{"text": "john smith lives in paris"}]
    assert task.predict(model, tokenizer, record, LABELS, {"threshold": 1.01})[0]["entities"] == []
    spans = task.predict(model, tokenizer, record, LABELS, {"min_span_length": 2, "batch_size": 1})[0]["entities"]
    assert [e["text"] for e in spans] == ["john smith"]
    assert task.predict(model, tokenizer, [{"text": ""}], LABELS, {}) == [{"entities": [], "tokens": [], "tags": []}]
    with pytest.raises(ValueError, match=r"record 1.*'text' or 'tokens'"):
        task.predict(model, tokenizer, [{"text": "paris"}, {"sentence": "paris"}], LABELS, {})


def test_reload_saved_model_restores_labels(trained: tuple[Any, Any, Any], tmp_path: Path) -> None:
    task, model, tokenizer = trained
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded, reloaded_tokenizer = task.load(str(tmp_path), [])
    assert task_labels(reloaded) == LABELS
    record = [{"text": "john smith lives in paris"}]
    expected = task.predict(model, tokenizer, record, LABELS, {})
    assert task.predict(reloaded, reloaded_tokenizer, record, [], {}) == expected


@pytest.mark.slow
def test_encoding_conll_train_is_fast(shared_data: Path, tiny_bert: Path) -> None:
    import time

    sentences, tokens, tags = [], [], []
    for line in (shared_data / "conll2003" / "train.txt").read_text().splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            if tokens:
                sentences.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
        else:
            tokens.append(parts[0])
            tags.append(parts[-1])
    task = build()
    _, tokenizer = task.load(str(tiny_bert), [])
    labels = task.labels_from(sentences)
    start = time.perf_counter()
    features = task.encode(sentences, tokenizer, labels)
    assert len(features) == len(sentences) > 10_000
    assert time.perf_counter() - start < 15


def test_a_fine_tuned_head_keeps_its_own_label_order(trained: tuple[Any, Any, Any], tmp_path: Path) -> None:
    """Data labels (sorted) that the saved head already names load that head as it is, rows unrenamed."""
    import copy

    import torch

    task, model, tokenizer = trained
    model = copy.deepcopy(model)
    saved_order = ["I-PER", "O", "B-PER", "I-LOC", "B-LOC"]  # a head trained elsewhere, in another order
    permutation = [LABELS.index(label) for label in saved_order]
    model.config.id2label = dict(enumerate(saved_order))
    model.config.label2id = {label: i for i, label in enumerate(saved_order)}
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[permutation].clone())
        model.classifier.bias.copy_(model.classifier.bias[permutation].clone())
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    record = [{"text": "john smith lives in paris"}]
    expected = task.predict(model, tokenizer, record, saved_order, {})
    assert expected[0]["entities"]
    for data_labels in (LABELS, ["O", "B-PER", "I-PER"]):  # as labels_from sorts them: all, or a subset
        reloaded, _ = task.load(str(tmp_path), data_labels)
        assert task.model_labels(reloaded) == saved_order
        assert task.predict(reloaded, tokenizer, record, saved_order, {}) == expected


def test_labels_the_head_does_not_name_get_a_new_head(trained: tuple[Any, Any, Any], tmp_path: Path) -> None:
    task, model, tokenizer = trained
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    reloaded, _ = task.load(str(tmp_path), ["O", "B-ORG", "I-ORG"])
    assert task.model_labels(reloaded) == ["O", "B-ORG", "I-ORG"]
    same, _ = task.load(str(tmp_path), LABELS)
    assert task.model_labels(same) == LABELS


def test_viterbi_decoding_never_starts_an_entity_with_i_and_argmax_is_kept_as_an_option(tiny_bert: Path) -> None:
    import torch

    from hone_plugins.tasks.bio import allowed_transitions

    viterbi, argmax = build(), build(decoding="argmax")
    model, tokenizer = viterbi.load(str(tiny_bert), LABELS)
    batch = viterbi.collate(viterbi.encode(TRAIN * 4, tokenizer, LABELS), tokenizer)
    inputs = {k: v for k, v in batch.items() if not k.startswith("_") and k != "labels"}
    torch.manual_seed(0)
    outputs = model(**inputs)
    outputs.logits = torch.randn_like(outputs.logits) * 3  # an untrained head: orphan I- tags are common
    constrained, _, scores = viterbi.decode(outputs, batch, LABELS)
    free, _, _ = argmax.decode(outputs, batch, LABELS)
    allowed = allowed_transitions(LABELS)
    for tags in constrained:
        ids = [len(LABELS)] + [LABELS.index(t) for t in tags]
        assert all(allowed[a, b] for a, b in zip(ids, ids[1:]))
    assert any(tags[0].startswith("I-") for tags in free) and constrained != free
    assert all(0.0 < s <= 1.0 for row in scores for s in row)


def test_a_word_the_tokenizer_drops_is_o_and_the_words_after_it_keep_their_tags(trained: tuple[Any, Any, Any]) -> None:
    task, model, tokenizer = trained
    words = ["john", "\u200b", "smith", "lives", "in", "paris"]  # a zero-width space has no sub-token
    assert None not in tokenizer([words], is_split_into_words=True).word_ids(0)[1:-1]
    assert 1 not in tokenizer([words], is_split_into_words=True).word_ids(0)
    result = task.predict(model, tokenizer, [{"tokens": words}], LABELS, {})[0]
    expected = task.predict(model, tokenizer, [{"tokens": TRAIN[0]["tokens"]}], LABELS, {})[0]["tags"]
    assert result["tags"] == [expected[0], "O", *expected[1:]]
