"""Helpers shared by the built-in tasks: padding, batching, label checks, quiet loading."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from hone.errors import DataError

IGNORE_INDEX = -100
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0, "labels": IGNORE_INDEX}
TOKEN_KEYS = ("input_ids", "decoder_input_ids")  # padded with the tokenizer's pad id


def quiet_transformers() -> None:
    """Silence transformers' load reports and bars (hone reports progress itself) and torchao's import noise."""
    import logging as std_logging

    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    # transformers imports torchao wherever it is installed (hone's torchao extra): its CUDA kernels that do not load
    # on a CPU and torch's pytree deprecating its enums are noise before every run
    for name in ("torchao", "torch.utils._pytree"):
        std_logging.getLogger(name).setLevel(std_logging.ERROR)


def hub_kwargs(trust_remote_code: bool, revision: str | None) -> dict[str, Any]:
    """The keyword arguments every ``from_pretrained`` call receives."""
    return {"trust_remote_code": trust_remote_code, **({"revision": revision} if revision else {})}


GENERIC_LABEL = re.compile(r"LABEL_\d+")


def config_labels(config: Any) -> list[str]:
    """Label names stored in a model config, in id order."""
    id2label = config.id2label or {}
    return [id2label.get(i, id2label.get(str(i), f"LABEL_{i}")) for i in range(config.num_labels)]


def head_labels(config: Any, labels: Sequence[str]) -> list[str]:
    """The labels to load a model with: its saved head's, in the head's order, where that head was trained on
    named labels covering every label of the data (fine-tuning or evaluating a fine-tuned model keeps its
    head, and no row of it is renamed); else the data's labels, for a new head."""
    saved = [str(label) for label in config_labels(config)]
    named = bool(saved) and not all(GENERIC_LABEL.fullmatch(label) for label in saved)
    return saved if named and set(map(str, labels)) <= set(saved) else list(labels)


def data_error(example: Mapping[str, Any], message: str) -> DataError:
    """A :class:`DataError` located at the example's source file and line, where the reader kept them."""
    return DataError(example.get("_source", "<data>"), example.get("_line"), message)


def unknown_label(example: Mapping[str, Any], label: Any, labels: Sequence[str], token: int = 0) -> DataError:
    """An unknown label at its file and line; ``token``: the index of the token it tags, for readers that put one token
    on each line (CoNLL)."""
    known = ", ".join(map(str, labels)) or "none"
    line = example.get("_line")
    if line is not None and example.get("_token_per_line"):
        line += token
    message = f"unknown label {label!r} (not in the training data); known labels: {known}"
    return DataError(example.get("_source", "<data>"), line, message)


def record_error(record: Mapping[str, Any], index: int, message: str) -> ValueError | DataError:
    """An error about a record given to ``predict``: at its file and line where its reader kept them (``hone
    predict`` does), else a ValueError naming its place in the batch."""
    if record.get("_line") is not None:
        return data_error(record, message)
    return ValueError(f"record {index}: {message}")


def require(record: Mapping[str, Any], index: int, keys: Sequence[str]) -> str:
    """The first of ``keys`` present in ``record``; a :func:`record_error` otherwise."""
    for key in keys:
        if record.get(key) is not None:
            return key
    expected = " or ".join(repr(k) for k in keys)
    given = sorted(k for k in record if not k.startswith("_")) or "no keys"
    raise record_error(record, index, f"expected key {expected}, got {given}")


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def feature(encoding: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The model inputs of example ``index`` of a batch encoding, as python lists, and its length."""
    out = {name: list(encoding[name][index]) for name in INPUT_NAMES if name in encoding}
    out["length"] = len(out["input_ids"])
    return out


PAD_MULTIPLE = 8  # fewer distinct shapes: CPU (oneDNN) and GPU kernels are cached per shape


def collate(features: Sequence[Mapping[str, Any]], tokenizer: Any) -> dict[str, Any]:
    """Right-pad each list feature to its longest in the batch (a multiple of 8); ``_`` keys stay python lists."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batch: dict[str, Any] = {}
    for key in features[0]:
        values = [f[key] for f in features]
        if key.startswith("_"):
            batch[key] = values
        elif key == "length":
            continue
        elif isinstance(values[0], list):
            width = -(-max(len(v) for v in values) // PAD_MULTIPLE) * PAD_MULTIPLE
            pad = pad_id if key in TOKEN_KEYS else PAD_VALUES.get(key, 0)
            batch[key] = torch.tensor([v + [pad] * (width - len(v)) for v in values], dtype=torch.long)
        else:
            batch[key] = torch.tensor(values)
    return batch


def device_of(model: Any) -> torch.device:
    return next(model.parameters()).device


def model_inputs(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """What the model's forward receives: tensors without labels or ``_`` metadata."""
    return {k: v.to(device) for k, v in batch.items() if not k.startswith("_") and k != "labels"}


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """Eval mode under ``torch.inference_mode``, restoring the training flag afterwards."""
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(training)


def label_kwargs(labels: Sequence[str] | None) -> dict[str, Any]:
    """``from_pretrained`` arguments for a fresh head over ``labels``; none keeps the saved head."""
    if not labels:
        return {}
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
        # a checkpoint fine-tuned on other labels gets a new head instead of a size-mismatch error
        "ignore_mismatched_sizes": True,
    }
