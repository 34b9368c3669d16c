"""Packing a batch's examples into rows of up to ``max_length`` tokens, each example attending only to itself.

A packed batch holds the same examples as the unpacked one, in fewer rows and with less padding:
``position_ids`` restart at 0 for every example, and ``attention_mask`` is a 4D additive float mask
``(rows, 1, width, width)``, causal inside each example and blocking every other example and the padding
(0 where a token may attend, the float32 minimum elsewhere). transformers 5 passes a 4D mask to the
attention as it is (``masking_utils``: "already prepared, or custom"), which eager and sdpa attention
apply; flash-attention kernels take no such mask, so a model that cannot isolate the examples of a row
is refused when it is loaded (:func:`isolation_problem`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hone_plugins.tasks import common


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into rows of at most ``capacity`` tokens: longest first, each into the first row it fits."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if row is None:
            rows.append([])
            room.append(capacity)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= lengths[index]
    return rows


def block_mask(segments: torch.Tensor) -> torch.Tensor:
    """4D additive mask from per-token segment ids (rows, width): causal within a segment, blocked across."""
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    allowed = (segments[:, :, None] == segments[:, None, :]) & causal
    mask = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, torch.finfo(torch.float32).min)
    return mask[:, None]


def pack(features: Sequence[Mapping[str, Any]], tokenizer: Any, capacity: int) -> dict[str, Any]:
    """A packed batch: ``input_ids``, ``labels``, ``position_ids``, the 4D ``attention_mask``; ``_`` keys stay
    python lists in the order of ``features`` (one entry per example)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = first_fit_decreasing([len(f["input_ids"]) for f in features], capacity)
    longest = max(sum(len(features[i]["input_ids"]) for i in row) for row in rows)
    width = -(-longest // common.PAD_MULTIPLE) * common.PAD_MULTIPLE
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), common.IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    segments = -torch.arange(1, width + 1).repeat(len(rows), 1)  # padding: each token on its own
    for r, row in enumerate(rows):
        start = 0
        for segment, index in enumerate(row):
            tokens, targets = features[index]["input_ids"], list(features[index]["labels"])
            end = start + len(tokens)
            targets[0] = common.IGNORE_INDEX  # the previous example's last token must not learn to predict it
            ids[r, start:end] = torch.tensor(tokens)
            labels[r, start:end] = torch.tensor(targets)
            positions[r, start:end] = torch.arange(len(tokens))
            segments[r, start:end] = segment
            start = end
    batch: dict[str, Any] = {"input_ids": ids, "labels": labels, "position_ids": positions,
                             "attention_mask": block_mask(segments)}
    batch.update({key: [f[key] for f in features] for key in features[0] if key.startswith("_")})
    return batch


def isolation_problem(model: Any) -> str | None:
    """Why ``model`` cannot run packed rows with its examples kept apart, or None: two short sequences run
    packed in one row must give the logits they give alone."""
    vocab = model.get_input_embeddings().num_embeddings
    first, second = [(7 * i + 3) % vocab for i in range(5)], [(11 * i + 5) % vocab for i in range(4)]
    features = [{"input_ids": ids, "labels": ids} for ids in (first, second)]
    batch = pack(features, type("Pad", (), {"pad_token_id": 0})(), len(first) + len(second))
    device = common.device_of(model)
    try:
        with common.evaluating(model):
            alone = [model(input_ids=torch.tensor([ids], device=device)).logits[0].float() for ids in (first, second)]
            packed = model(**common.model_inputs(batch, device)).logits[0].float()
    except (TypeError, ValueError, RuntimeError) as error:
        return f"its forward refuses packed inputs ({type(error).__name__}: {str(error).splitlines()[0]})"
    together, expected = packed[: len(first) + len(second)], torch.cat(alone)
    scale = float(expected.abs().max()) or 1.0
    tolerance = 1e-4 if next(model.parameters()).dtype == torch.float32 else 2e-2
    if not torch.allclose(together, expected, rtol=tolerance, atol=tolerance * scale):
        return "its logits change when other examples share the row (its attention ignores 4D masks or positions)"
    return None
