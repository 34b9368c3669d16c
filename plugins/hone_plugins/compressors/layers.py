"""Choosing and reshaping the layers compressors work on."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from torch import nn


def select_linear(model: nn.Module, include: Sequence[str], exclude: Sequence[str]) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` modules whose names match an ``include`` pattern and no ``exclude`` pattern (fnmatch)."""
    found = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    chosen = {name: module for name, module in found.items()
              if any(fnmatch.fnmatch(name, p) for p in include) and not any(fnmatch.fnmatch(name, p) for p in exclude)}
    if not chosen:
        names = list(found)
        example = f"names look like: {', '.join(names[:3])}" if names else "the model has no Linear layer"
        raise ValueError(f"no Linear layer matches include {list(include)} and exclude {list(exclude)}; {example}")
    return chosen
