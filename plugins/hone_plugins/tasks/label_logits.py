"""Logits only where the loss reads them: a language model's vocabulary projection on the labelled positions alone.

With completion-only loss most positions of a batch (the prompts, the padding) carry no label, yet the model projects
every one of them onto the whole vocabulary; on a small model that projection costs as much as the body (MiniLM-L6:
384 x 30,522 per position against about 10.6 M multiply-adds for its six layers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from hone_plugins.distillers import shifted_left
from hone_plugins.tasks.common import IGNORE_INDEX


@contextmanager
def logits_at_labels(model: Any, labels: torch.Tensor, shift: int) -> Iterator[None]:
    """While the model runs, its output projection sees only the labelled positions' hidden states, as one row: the
    logits come out (1, N, vocab), in row-major order of those positions. A model without a separate output projection,
    or one that hands it something other than the whole sequence, is left alone (its logits keep their full shape)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Module):
        yield
        return
    keep = shifted_left(labels != IGNORE_INDEX, shift)  # the positions whose logits predict a label

    def select(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0] if args else None
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or hidden.shape[:2] != keep.shape:
            return None
        return (hidden[keep.to(hidden.device)].unsqueeze(0), *args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def shifted_pairs(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, vocab) logits and their (positions,) labels, from full logits or from :func:`logits_at_labels`'."""
    if logits.shape[:2] == labels.shape:  # every position's logits
        return logits[:, : logits.shape[1] - shift].flatten(0, 1), labels[:, shift:].flatten()
    targets = labels[:, shift:]
    return logits.flatten(0, 1), targets[targets != IGNORE_INDEX]
