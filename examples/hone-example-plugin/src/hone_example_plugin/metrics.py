"""The ``example-token-f1`` metric."""

from __future__ import annotations

from typing import Any

from hone.components import EvalOutput


class TokenF1:
    """Token-level precision, recall and F1 over entity tags.

    A token tagged ``outside`` (``O``) is no entity and is not counted: precision is the share of
    tokens predicted as an entity whose tag is right, recall the share of entity tokens whose tag
    is right. With ``ignore_prefix`` only the entity type counts (``B-PER`` and ``I-PER`` match).
    """

    def __init__(self, *, outside: str = "O", ignore_prefix: bool = False) -> None:
        self.outside, self.ignore_prefix = outside, ignore_prefix

    def _tag(self, tag: str) -> str:
        if self.ignore_prefix and tag != self.outside:
            return tag.split("-", 1)[-1]
        return tag

    def compute(self, output: EvalOutput) -> dict[str, Any]:
        predictions, references = list(output.predictions), list(output.references)
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if not predictions:
            raise ValueError("no predictions to score")
        predicted = gold = correct = 0
        for i, (p, r) in enumerate(zip(predictions, references)):
            if not (isinstance(p, (list, tuple)) and isinstance(r, (list, tuple))):
                raise ValueError(f"example {i}: example-token-f1 scores tag sequences, got {type(p).__name__}")
            if len(p) != len(r):
                raise ValueError(f"example {i}: {len(p)} predicted tags but {len(r)} reference tags")
            for predicted_tag, reference_tag in zip(map(self._tag, p), map(self._tag, r)):
                predicted += predicted_tag != self.outside
                gold += reference_tag != self.outside
                correct += predicted_tag == reference_tag != self.outside
        return {
            "token_precision": correct / predicted if predicted else 0.0,
            "token_recall": correct / gold if gold else 0.0,
            "token_f1": 2 * correct / (predicted + gold) if predicted + gold else 0.0,
        }
