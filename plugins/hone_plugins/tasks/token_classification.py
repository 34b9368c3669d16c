"""Token classification: one tag per word, predicted on the word's first sub-token."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hone_plugins.tasks import bio, common

WORD = re.compile(r"\d+(?:[.,]\d+)+|\w+(?:[-'’]\w+)*|[^\w\s]")
# byte-level BPE tokenizers refuse pre-split words unless told to add the space they lost
PREFIX_SPACE_MODELS = frozenset({"roberta", "gpt2", "bloom", "longformer", "bart", "deberta", "mvp", "led"})
Words = tuple[str, list[str], list[tuple[int, int]]]


def continuation(tag: str) -> str:
    """The tag of a word's later sub-tokens: ``B-X`` becomes ``I-X``."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def align(word_ids: Sequence[int | None], ids: Sequence[int], next_ids: Sequence[int] | None) -> list[int]:
    """Sub-token labels: a word's id on its first piece, ``next_ids`` (or -100) on the others."""
    aligned: list[int] = []
    previous = None
    for word in word_ids:
        if word is None:
            aligned.append(common.IGNORE_INDEX)
        elif word != previous:
            aligned.append(ids[word])
        else:
            aligned.append(next_ids[word] if next_ids is not None else common.IGNORE_INDEX)
        previous = word
    return aligned


def first_pieces(word_ids: Sequence[int | None], n_words: int) -> dict[int, int]:
    """Word -> the position of its first sub-token, for the words that have one after truncation
    (a word the tokenizer drops entirely, such as a zero-width space, has none)."""
    positions: dict[int, int] = {}
    previous = None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous and word < n_words:
            positions[word] = position
        previous = word
    return positions


def word_level(
    log_probs: torch.Tensor,
    word_ids: Sequence[int | None],
    labels: Sequence[str],
    n_words: int,
    allowed: torch.Tensor | None,
) -> tuple[list[str], list[float]]:
    """Per-word tags and confidences from first sub-tokens; words without a sub-token are ``O``.

    ``log_probs`` is one sentence's ``[sub-tokens, labels]``; with ``allowed`` transitions the
    tags are the best sequence that obeys them, otherwise each word's own best tag.
    """
    positions = first_pieces(word_ids, n_words)
    words = log_probs[list(positions.values())]
    best = bio.viterbi(words, allowed) if allowed is not None else words.argmax(-1).tolist()
    confidence = words.exp()[torch.arange(len(best)), torch.tensor(best, dtype=torch.long)].tolist()
    tags, scores = ["O"] * n_words, [0.0] * n_words
    for word, label, score in zip(positions, best, confidence):
        tags[word], scores[word] = labels[label], score
    return tags, scores


def split_words(record: Mapping[str, Any], index: int) -> Words:
    """The text, its words and their character offsets, from ``text`` or ``tokens``."""
    key = common.require(record, index, ("text", "tokens"))
    if key == "text":
        text = str(record["text"])
        matches = list(WORD.finditer(text))
        return text, [m.group() for m in matches], [m.span() for m in matches]
    words = [str(token) for token in record["tokens"]]
    offsets, start = [], 0
    for word in words:
        offsets.append((start, start + len(word)))
        start += len(word) + 1
    return " ".join(words), words, offsets


def entities(
    text: str,
    offsets: Sequence[tuple[int, int]],
    tags: list[str],
    scores: Sequence[float],
    threshold: float,
    min_words: int,
) -> list[dict[str, Any]]:
    """BIO chunks of ``tags`` as character spans of ``text`` with their mean word confidence."""
    from seqeval.metrics.sequence_labeling import get_entities

    spans = []
    for kind, first, last in get_entities(tags):
        size = last - first + 1
        score = sum(scores[first : last + 1]) / size
        if size < min_words or score < threshold:
            continue
        start, end = offsets[first][0], offsets[last][1]
        spans.append({"type": kind, "start": start, "end": end, "text": text[start:end], "score": score})
    return spans


class TokenClassification:
    """Word tagging with a token-classification head."""

    default_metrics: tuple[str, ...] = ("entity-f1",)

    def __init__(self, max_length: int = 128, label_all_tokens: bool = False, decoding: str = "viterbi") -> None:
        self.max_length = max_length
        self.label_all_tokens = label_all_tokens
        self.decoding = decoding

    def transitions(self, labels: Sequence[str]) -> torch.Tensor | None:
        """The IOB2 transitions Viterbi decoding keeps to, or ``None`` for a per-word argmax."""
        return bio.allowed_transitions(labels) if self.decoding == "viterbi" else None

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        tags = {tag for example in examples for tag in example.get("tags") or ()}
        return ["O", *sorted(tags - {"O"})]

    def load(
        self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None
    ) -> tuple[Any, Any]:
        common.quiet_transformers()  # first: importing transformers imports torchao
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        hub = common.hub_kwargs(trust_remote_code, revision)
        config = AutoConfig.from_pretrained(source, **hub)
        prefix = {"add_prefix_space": True} if config.model_type in PREFIX_SPACE_MODELS else {}
        tokenizer = AutoTokenizer.from_pretrained(source, **hub, **prefix)
        labels = common.head_labels(config, labels)
        model = AutoModelForTokenClassification.from_pretrained(source, **hub, **common.label_kwargs(labels))
        return model, tokenizer

    def model_labels(self, model: Any) -> list[str]:
        """The labels ``model`` predicts, in id order."""
        return common.config_labels(model.config)

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]:
        label2id = {label: i for i, label in enumerate(labels)}
        for example in examples:
            tokens, tags = example.get("tokens"), example.get("tags")
            if tokens is None or tags is None:
                raise common.data_error(example, "a token-classification example needs 'tokens' and 'tags'")
            if len(tokens) != len(tags):
                raise common.data_error(example, f"{len(tokens)} tokens but {len(tags)} tags")
            for index, tag in enumerate(tags):
                if tag not in label2id:
                    raise common.unknown_label(example, tag, labels, index)
        encoding = tokenizer(
            [list(map(str, e["tokens"])) for e in examples],
            is_split_into_words=True,
            truncation=True,
            max_length=self.max_length,
        )
        features = []
        for index, example in enumerate(examples):
            tags = list(example["tags"])
            ids = [label2id[tag] for tag in tags]
            next_ids = None
            if self.label_all_tokens:
                next_ids = [label2id.get(continuation(tag), label2id[tag]) for tag in tags]
            word_ids = encoding.word_ids(index)
            feature = common.feature(encoding, index)
            feature.update(labels=align(word_ids, ids, next_ids), _word_ids=word_ids, _tags=tags)
            features.append(feature)
        return features

    def collate(self, features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
        return common.collate(features, tokenizer)

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits = outputs.logits
        labels = batch["labels"].to(logits.device)
        if not bool((labels != common.IGNORE_INDEX).any()):
            return logits.sum() * 0.0  # cross-entropy over no labelled token is NaN
        return F.cross_entropy(
            logits.flatten(0, -2).float(),
            labels.flatten(),
            ignore_index=common.IGNORE_INDEX,
            label_smoothing=label_smoothing,
        )

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        log_probs = outputs.logits.detach().float().log_softmax(-1).cpu()
        allowed = self.transitions(labels)
        predictions, scores = [], []
        for row, (word_ids, tags) in enumerate(zip(batch["_word_ids"], batch["_tags"])):
            predicted, confidence = word_level(log_probs[row], word_ids, labels, len(tags), allowed)
            predictions.append(predicted)
            scores.append(confidence)
        return predictions, [list(tags) for tags in batch["_tags"]], scores

    def predict(
        self,
        model: Any,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        labels: list[str],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        names = list(labels) or common.config_labels(model.config)
        threshold = float(options.get("threshold", 0.0))
        min_words = int(options.get("min_span_length", 1))
        inputs = [split_words(record, index) for index, record in enumerate(records)]
        device = common.device_of(model)
        allowed = self.transitions(names)
        results: list[dict[str, Any]] = []
        with common.evaluating(model):
            for chunk in common.batched(inputs, options.get("batch_size", 32)):
                encoding = tokenizer(
                    [words for _, words, _ in chunk],
                    is_split_into_words=True,
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                tensors = {k: v.to(device) for k, v in encoding.items() if k in common.INPUT_NAMES}
                log_probs = model(**tensors).logits.float().log_softmax(-1).cpu()
                for row, (text, words, offsets) in enumerate(chunk):
                    tags, scores = word_level(log_probs[row], encoding.word_ids(row), names, len(words), allowed)
                    spans = entities(text, offsets, tags, scores, threshold, min_words)
                    results.append({"entities": spans, "tokens": words, "tags": tags})
        return results
