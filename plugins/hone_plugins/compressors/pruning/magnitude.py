"""Unstructured magnitude pruning, one-shot or gradual during a train stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hone.components import CompressionContext
from hone_plugins.compressors.layers import keep_largest_per_row, pruned_per_group, refuse_ragged, select_linear
from hone_plugins.compressors.pruning import cubic_sparsity


def magnitude_masks(weights: list[torch.Tensor], sparsity: float, scope: str,
                    n_m: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """Keep-masks zeroing the ``sparsity`` share of smallest |w|: in each tensor, over all of them at once, or (N:M)
    in every group of M consecutive inputs of a row, where ``sparsity`` 1 - N/M prunes M - N of each group."""
    if n_m:
        return [keep_largest_per_row(w.detach().abs(), pruned_per_group(sparsity, n_m), n_m[1]) for w in weights]
    if scope == "layer":
        return [_keep_largest(w.abs().flatten(), sparsity).view_as(w) for w in weights]
    keep = _keep_largest(torch.cat([w.abs().flatten().float() for w in weights]), sparsity)
    return [mask.view_as(w) for mask, w in zip(keep.split([w.numel() for w in weights]), weights)]


def _keep_largest(magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
    keep = torch.ones_like(magnitudes, dtype=torch.bool)
    count = round(sparsity * magnitudes.numel())
    if count:  # topk, not a threshold: ties must not prune more than asked
        keep[torch.topk(magnitudes, count, largest=False).indices] = False
    return keep


class MagnitudePruning:
    """Unstructured L1 pruning of Linear weights (torch.nn.utils.prune), made permanent."""

    def __init__(self, sparsity: float, scope: str, include: Sequence[str], exclude: Sequence[str],
                 n_m: Sequence[int] | None = None) -> None:
        self.n_m = (int(n_m[0]), int(n_m[1])) if n_m else None
        self.sparsity = 1 - self.n_m[0] / self.n_m[1] if self.n_m else sparsity
        self.scope, self.include, self.exclude = scope, list(include), list(exclude)

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        from torch.nn.utils import prune

        layers = select_linear(model, self.include, self.exclude)
        if self.n_m:
            refuse_ragged(layers, self.n_m)
            with torch.no_grad():
                for layer, keep in zip(layers.values(), magnitude_masks([m.weight for m in layers.values()], self.sparsity,
                                                                          self.scope, self.n_m)):
                    layer.weight.mul_(keep)
            return model, {"sparsity": self.sparsity, "n_m": list(self.n_m), "pruned_layers": len(layers)}
        if self.scope == "global":
            prune.global_unstructured([(m, "weight") for m in layers.values()], pruning_method=prune.L1Unstructured,
                                      amount=self.sparsity)
        else:
            for module in layers.values():
                prune.l1_unstructured(module, "weight", amount=self.sparsity)
        for module in layers.values():
            prune.remove(module, "weight")  # weight = weight_orig * mask, as a plain parameter again
        return model, {"sparsity": self.sparsity, "scope": self.scope, "pruned_layers": len(layers)}

    def gradual(self, model: nn.Module, total_steps: int, start: int, end: int, every: int) -> GradualMagnitude:
        return GradualMagnitude(self, model, start, end, every)


class GradualMagnitude:
    """Sparsity rising from 0 at step ``start`` to the target at ``end`` on Zhu & Gupta's cubic schedule.

    Masks are re-applied after every optimizer step, so pruned weights stay zero while the others train;
    weights that were already zero when the stage started stay pruned (with ``start == end == 0`` that is
    all it does: a recovery fine-tune after one-shot pruning keeps its sparsity).
    """

    def __init__(self, pruner: MagnitudePruning, model: nn.Module, start: int, end: int, every: int) -> None:
        self.pruner, self.start, self.end, self.every = pruner, start, end, every
        layers = select_linear(model, pruner.include, pruner.exclude)
        if pruner.n_m:
            refuse_ragged(layers, pruner.n_m)
        self.layers = list(layers.values())
        # a resumed stage starts from a checkpoint whose pruned weights are exactly zero: they are the masks
        self.masks = [layer.weight.detach() != 0 for layer in self.layers]
        self.sparsity = 0.0

    def target(self, step: int) -> float:
        return cubic_sparsity(self.pruner.sparsity, step, self.start, self.end)

    def after_step(self, model: nn.Module, step: int) -> None:
        if step < self.start:
            return
        with torch.no_grad():
            if step <= self.end and ((step - self.start) % self.every == 0 or step == self.end):
                self.sparsity = self.target(step)
                masks = magnitude_masks([layer.weight for layer in self.layers], self.sparsity, self.pruner.scope,
                                        self.pruner.n_m)
                self.masks = [new & old for new, old in zip(masks, self.masks)]  # never revive a pruned weight
            for layer, mask in zip(self.layers, self.masks):
                layer.weight.mul_(mask)

    def report(self, model: nn.Module) -> dict[str, Any]:
        return {"target_sparsity": self.pruner.sparsity, "scope": self.pruner.scope, "pruned_layers": len(self.layers),
                "n_m": list(self.pruner.n_m) if self.pruner.n_m else None,
                "schedule": {"start": self.start, "end": self.end, "every": self.every}}
