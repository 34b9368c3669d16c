"""Data helpers shared by every task: deterministic splits and label checks."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hone.components import Example
from hone.errors import DataError
from hone.spec.models import SPLITS


def split_examples(
    examples: Sequence[Example], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[Example]]:
    """Shuffle ``examples`` with ``seed`` and cut them into train/validation/test by ``ratios``."""
    if len(ratios) != len(SPLITS):
        raise ValueError(f"ratios must have {len(SPLITS)} values (train, validation, test), got {len(ratios)}")
    if any(not math.isfinite(r) or r < 0 for r in ratios):
        raise ValueError(f"ratios must be non-negative, got {list(ratios)}")
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise ValueError(f"ratios must sum to 1, got {list(ratios)} (sum {sum(ratios):g})")
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    # Cutting at rounded cumulative ratios makes the sizes add up to n exactly.
    cuts = [0, round(n * ratios[0]), round(n * (ratios[0] + ratios[1])), n]
    return {name: shuffled[cuts[i]:cuts[i + 1]] for i, name in enumerate(SPLITS)}


def check_labels(examples: Sequence[Example], known: Sequence[str], path: str | Path) -> None:
    """Raise DataError if an example of ``path`` has a ``label`` outside ``known`` (the training labels)."""
    allowed = set(known)
    unknown: dict[Any, list[int]] = {}
    for index, example in enumerate(examples):
        label = example.get("label")
        if label is not None and label not in allowed:
            unknown.setdefault(label, []).append(index)
    if unknown:
        (label, where), *rest = unknown.items()
        others = f" (other unknown labels: {', '.join(repr(other) for other, _ in rest)})" if rest else ""
        raise DataError(
            path,
            None,
            f"label {label!r} ({len(where)} example(s), first is example {where[0] + 1}) never appears in the "
            f"training data{others}; known labels: {', '.join(map(str, known))}",
        )


def load_splits(data: Any, host: Any, seed: int) -> dict[str, list[Example]]:
    """Read a spec's ``data`` section into train/validation/test examples (a missing split is empty)."""
    reader = host.build("reader", data.reader)
    if data.path is not None:
        splits = split_examples(reader.read(Path(data.path)), data.split, seed)
    else:
        splits = {name: reader.read(Path(getattr(data, name))) if getattr(data, name) else [] for name in SPLITS}
    if data.limit is not None:
        splits = {name: examples[: data.limit] for name, examples in splits.items()}
    return splits
