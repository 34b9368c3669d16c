"""What the classification metrics share: predictions paired with references, label sets, score rows."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from hone.components import EvalOutput


def check_lengths(predictions: Sequence[Any], references: Sequence[Any], what: str = "examples") -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references ({what} must pair up)")


def is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def paired(output: EvalOutput) -> tuple[list[Any], list[Any]]:
    """Predictions and references, paired and checked; token tag sequences are flattened."""
    predictions, references = list(output.predictions), list(output.references)
    check_lengths(predictions, references)
    if not predictions:
        raise ValueError("no predictions to score")
    nested = [is_sequence(p) or is_sequence(r) for p, r in zip(predictions, references)]
    if not any(nested):
        return predictions, references
    flat_p: list[Any] = []
    flat_r: list[Any] = []
    for i, (p, r) in enumerate(zip(predictions, references)):
        if not (is_sequence(p) and is_sequence(r)):
            raise ValueError(f"example {i}: mixing tag sequences with single labels")
        if len(p) != len(r):
            raise ValueError(f"example {i}: {len(p)} predicted tags but {len(r)} reference tags")
        flat_p.extend(p)
        flat_r.extend(r)
    if not flat_p:
        raise ValueError("no tags to score")
    return flat_p, flat_r


def sorted_labels(values: set[Hashable]) -> list[Any]:
    try:
        return sorted(values)  # type: ignore[type-var]
    except TypeError:  # mixed types (e.g. 1 and "1") have no natural order
        return sorted(values, key=repr)


def label_set(output: EvalOutput, predictions: list[Any], references: list[Any]) -> list[Any]:
    """``output.label_names`` when given (every value must be one of them), else the sorted union."""
    seen = set(predictions) | set(references)
    if not output.label_names:
        return sorted_labels(seen)
    unknown = seen - set(output.label_names)
    if unknown:
        raise ValueError(f"labels {sorted_labels(unknown)} are not in label_names {output.label_names}")
    return list(output.label_names)


def fraction_equal(predictions: list[Any], references: list[Any]) -> float:
    return sum(p == r for p, r in zip(predictions, references)) / len(predictions)


def score_row(precision: Any, recall: Any, f1: Any, support: Any) -> dict[str, Any]:
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "support": int(support)}

