"""Decoding word tags under the IOB2 rule that ``I-X`` only continues a ``B-X`` or ``I-X``."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def allowed_transitions(labels: Sequence[str]) -> torch.Tensor:
    """``[previous, next]`` booleans; the extra last row is the start of the sentence.

    Only ``I-X`` tags whose ``B-X`` exists are constrained, so tag sets that are not BIO
    (part-of-speech tags, say) decode exactly as a per-word argmax would.
    """
    names = list(labels)
    allowed = torch.ones(len(names) + 1, len(names), dtype=torch.bool)
    for column, label in enumerate(names):
        kind = label[2:]
        if label.startswith("I-") and "B-" + kind in names:
            allowed[:, column] = torch.tensor([n in ("B-" + kind, "I-" + kind) for n in names] + [False])
    return allowed


def viterbi(log_probs: torch.Tensor, allowed: torch.Tensor) -> list[int]:
    """The most probable tag sequence for ``[words, labels]`` log-probabilities that breaks no transition."""
    if log_probs.shape[0] == 0:
        return []
    penalty = torch.zeros(allowed.shape, dtype=log_probs.dtype).masked_fill(~allowed, float("-inf"))
    score = log_probs[0] + penalty[-1]
    pointers = []
    for row in log_probs[1:]:
        score, best_previous = (score[:, None] + penalty[:-1]).max(0)
        score = score + row
        pointers.append(best_previous)
    path = [int(score.argmax())]
    for best_previous in reversed(pointers):
        path.append(int(best_previous[path[-1]]))
    return path[::-1]
