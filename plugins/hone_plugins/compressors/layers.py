"""Choosing and reshaping the layers compressors work on."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch
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


def is_conv1d(module: nn.Module) -> bool:
    """transformers' ``Conv1D`` (GPT-2): a Linear whose weight is stored transposed, as (in, out)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and getattr(module, "weight", None) is not None


def select_prunable(model: nn.Module, include: Sequence[str], exclude: Sequence[str]) -> dict[str, nn.Module]:
    """Like :func:`select_linear`, with GPT-2's ``Conv1D`` layers too."""
    found = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear) or is_conv1d(module)}
    chosen = {name: module for name, module in found.items()
              if any(fnmatch.fnmatch(name, p) for p in include) and not any(fnmatch.fnmatch(name, p) for p in exclude)}
    if not chosen:
        example = f"names look like: {', '.join(list(found)[:3])}" if found else "the model has no Linear layer"
        raise ValueError(f"no Linear layer matches include {list(include)} and exclude {list(exclude)}; {example}")
    return chosen


def out_in(module: nn.Module) -> torch.Tensor:
    """A layer's weight as (out_features, in_features): the parameter itself, or a view of a Conv1D's."""
    return module.weight.t() if is_conv1d(module) else module.weight
