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


def keep_largest_per_row(scores: torch.Tensor, pruned: int, group: int | None = None) -> torch.Tensor:
    """Keep-mask of (out, in) ``scores`` without the ``pruned`` lowest of each row, or of each group of ``group`` inputs."""
    rows = scores if group is None else scores.reshape(scores.shape[0], -1, group)
    keep = torch.ones_like(rows, dtype=torch.bool)
    if pruned:  # topk, not a threshold: ties must not prune more than asked
        keep.scatter_(-1, torch.topk(rows, pruned, dim=-1, largest=False).indices, False)
    return keep.reshape(scores.shape)


def pruned_per_group(sparsity: float, n_m: tuple[int, int]) -> int:
    """Weights to prune in each group of M at ``sparsity``, where the full N:M pattern (1 - N/M) prunes M - N."""
    n, m = n_m
    return round(sparsity / (1 - n / m) * (m - n))


def refuse_ragged(layers: dict[str, nn.Module], n_m: tuple[int, int]) -> None:
    """Refuse (before any work) layers whose input width an N:M pattern cannot tile."""
    ragged = [name for name, m in layers.items() if out_in(m).shape[1] % n_m[1]]
    if ragged:
        raise ValueError(f"n_m {list(n_m)}: in_features of {', '.join(ragged[:3])} is not a multiple of "
                         f"{n_m[1]}; exclude those layers or choose another M")


def out_in(module: nn.Module) -> torch.Tensor:
    """A layer's weight as (out_features, in_features): the parameter itself, or a view of a Conv1D's."""
    return module.weight.t() if is_conv1d(module) else module.weight


def shrink(module: nn.Module, out_index: torch.Tensor | None = None, in_index: torch.Tensor | None = None) -> nn.Module:
    """A smaller copy of a Linear or Conv1D keeping output features ``out_index`` and input features ``in_index``."""
    weight = out_in(module).detach()
    if out_index is not None:
        weight = weight[out_index]
    if in_index is not None:
        weight = weight[:, in_index]
    bias = module.bias
    if bias is not None and out_index is not None:
        bias = bias[out_index]
    out_features, in_features = weight.shape
    if is_conv1d(module):
        new: nn.Module = type(module)(out_features, in_features)
        weight = weight.t()
    else:
        new = nn.Linear(in_features, out_features, bias=module.bias is not None)
    new = new.to(device=module.weight.device, dtype=module.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new
