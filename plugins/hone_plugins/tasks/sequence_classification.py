"""Sequence classification and regression: one label (or number) per text or text pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from hone_plugins.tasks import common


def label_order(label: str) -> tuple[int, float, str]:
    """Sort key: numeric labels by value, before the others alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


class SequenceClassification:
    """A classification head over the whole text (or text pair)."""

    default_metrics: tuple[str, ...] = ("accuracy", "f1")

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        return sorted({str(e["label"]) for e in examples if e.get("label") is not None}, key=label_order)

    def head(self, labels: list[str], config: Any) -> dict[str, Any]:
        return common.label_kwargs(common.head_labels(config, labels))

    def model_labels(self, model: Any) -> list[str]:
        """The labels ``model`` predicts, in id order."""
        return common.config_labels(model.config)

    def load(
        self, source: str, labels: list[str], *, trust_remote_code: bool = False, revision: str | None = None
    ) -> tuple[Any, Any]:
        common.quiet_transformers()  # first: importing transformers imports torchao
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        hub = common.hub_kwargs(trust_remote_code, revision)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub)
        head = self.head(labels, AutoConfig.from_pretrained(source, **hub))
        model = AutoModelForSequenceClassification.from_pretrained(source, **hub, **head)
        # decoder backbones pool the last non-pad token, so batches need a pad id
        if tokenizer.pad_token is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer

    def tokenize(self, records: Sequence[Mapping[str, Any]], tokenizer: Any) -> list[dict[str, Any]]:
        """Unpadded features of texts, batching those with and without ``text_pair`` apart."""
        features: list[dict[str, Any]] = [{} for _ in records]
        for paired in (False, True):
            rows = [i for i, r in enumerate(records) if (r.get("text_pair") is not None) == paired]
            if not rows:
                continue
            texts = [str(records[i]["text"]) for i in rows]
            pairs = [str(records[i]["text_pair"]) for i in rows] if paired else None
            encoding = tokenizer(texts, pairs, truncation=True, max_length=self.max_length)
            for row, index in enumerate(rows):
                features[index] = common.feature(encoding, row)
        return features

    def target(self, example: Mapping[str, Any], label2id: Mapping[str, int], labels: list[str]) -> dict[str, Any]:
        label = str(example["label"])
        if label not in label2id:
            raise common.unknown_label(example, example["label"], labels)
        return {"labels": label2id[label], "_label": label}

    def encode(self, examples: Sequence[Mapping[str, Any]], tokenizer: Any, labels: list[str]) -> list[dict[str, Any]]:
        for example in examples:
            if example.get("text") is None or example.get("label") is None:
                raise common.data_error(example, "a sequence example needs 'text' and 'label'")
        label2id = {label: i for i, label in enumerate(labels)}
        features = self.tokenize(examples, tokenizer)
        for feature, example in zip(features, examples):
            feature.update(self.target(example, label2id, labels))
        return features

    def collate(self, features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
        return common.collate(features, tokenizer)

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        logits = outputs.logits.float()
        return F.cross_entropy(logits, batch["labels"].to(logits.device), label_smoothing=label_smoothing)

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        probs = outputs.logits.detach().float().softmax(-1).cpu()
        predictions = [labels[i] for i in probs.argmax(-1).tolist()]
        return predictions, list(batch["_label"]), probs.tolist()

    def outputs(self, logits: torch.Tensor, labels: list[str]) -> list[dict[str, Any]]:
        results = []
        for probs in logits.float().softmax(-1).cpu().tolist():
            best = max(range(len(probs)), key=probs.__getitem__)
            results.append({"label": labels[best], "score": probs[best], "probabilities": dict(zip(labels, probs))})
        return results

    def predict(
        self,
        model: Any,
        tokenizer: Any,
        records: Sequence[Mapping[str, Any]],
        labels: list[str],
        options: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        for index, record in enumerate(records):
            common.require(record, index, ("text",))
        names = list(labels) or common.config_labels(model.config)
        device = common.device_of(model)
        results: list[dict[str, Any]] = []
        with common.evaluating(model):
            for chunk in common.batched(records, options.get("batch_size", 32)):
                batch = common.collate(self.tokenize(chunk, tokenizer), tokenizer)
                results.extend(self.outputs(model(**common.model_inputs(batch, device)).logits, names))
        return results


class SequenceRegression(SequenceClassification):
    """A single-output regression head over the whole text (or text pair), trained with MSE."""

    default_metrics: tuple[str, ...] = ("mse", "pearson")

    def labels_from(self, examples: Sequence[Mapping[str, Any]]) -> list[str]:
        return []

    def head(self, labels: list[str], config: Any) -> dict[str, Any]:
        return {"num_labels": 1, "problem_type": "regression", "ignore_mismatched_sizes": True}

    def model_labels(self, model: Any) -> list[str]:
        return []

    def target(self, example: Mapping[str, Any], label2id: Mapping[str, int], labels: list[str]) -> dict[str, Any]:
        try:
            return {"labels": float(example["label"])}
        except (TypeError, ValueError):
            raise common.data_error(example, f"label {example['label']!r} is not a number") from None

    def loss(self, outputs: Any, batch: Mapping[str, Any], label_smoothing: float = 0.0) -> torch.Tensor:
        predicted = outputs.logits.squeeze(-1).float()
        return F.mse_loss(predicted, batch["labels"].to(predicted.device).float())

    def decode(
        self, outputs: Any, batch: Mapping[str, Any], labels: list[str]
    ) -> tuple[list[Any], list[Any], list[Any]]:
        predictions = outputs.logits.detach().squeeze(-1).float().cpu().tolist()
        references = batch["labels"].float().cpu().tolist()
        return predictions, references, [None] * len(predictions)

    def outputs(self, logits: torch.Tensor, labels: list[str]) -> list[dict[str, Any]]:
        return [{"score": value} for value in logits.squeeze(-1).float().cpu().tolist()]
