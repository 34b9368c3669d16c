"""Wanda pruning (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"): weight
w_ij scores |w_ij| * ||X_j||_2, the norm of input feature j over calibration tokens, and each output row loses its
lowest-scoring weights (a share of the row, or N:M groups). One-shot on calibration batches, or gradual in a
train stage, where the norms come from the training forward passes."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from hone.components import CompressionContext
from hone_plugins.compressors.layers import keep_largest_per_row, out_in, pruned_per_group, refuse_ragged, select_prunable
from hone_plugins.compressors.pruning import cubic_sparsity


class InputNorms:
    """Sums of squared inputs per input feature of each layer, kept by forward hooks (padding tokens left out)."""

    def __init__(self, model: nn.Module, layers: dict[str, nn.Module]) -> None:
        self.sums = {name: torch.zeros(out_in(m).shape[1], dtype=torch.float64, device=m.weight.device)
                     for name, m in layers.items()}
        self.tokens = dict.fromkeys(layers, 0)
        self._mask: torch.Tensor | None = None
        self._handles = [model.register_forward_pre_hook(self._attention_mask, with_kwargs=True)]
        self._handles += [m.register_forward_hook(partial(self._record, name)) for name, m in layers.items()]

    def _attention_mask(self, module: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        self._mask = mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None

    def _record(self, name: str, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        x = inputs[0].detach()
        if self._mask is not None and tuple(x.shape[:2]) == tuple(self._mask.shape):
            x = x[self._mask.bool()]  # (tokens, features) without padding
        x = x.reshape(-1, x.shape[-1])
        self.sums[name] += x.double().pow(2).sum(0)
        self.tokens[name] += x.shape[0]

    def norms(self, name: str) -> torch.Tensor:
        """||X_j||_2 of each input feature over the tokens seen (summed over data-parallel ranks)."""
        total = self.sums[name]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            total = total.clone()
            torch.distributed.all_reduce(total)  # every rank must choose the same masks
        return total.sqrt().float()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def wanda_keep(weight: torch.Tensor, norms: torch.Tensor, pruned: int, group: int | None,
               previous: torch.Tensor | None = None) -> torch.Tensor:
    """Keep-mask of an (out, in) weight: ``pruned`` lowest |w| * norm per row, or per group of ``group`` inputs.

    Weights ``previous`` already pruned are pruned first, so masks only grow and the count stays exact."""
    scores = weight.detach().abs().float() * norms.to(weight.device)[None, :]
    if previous is not None:
        scores = scores.masked_fill(~previous, -1.0)
    keep = keep_largest_per_row(scores, pruned, group)
    return keep if previous is None else keep & previous  # never revive a pruned weight


class WandaPruning:
    """Prunes each output row of the selected layers by |weight| x input-feature norm, to a share or an N:M pattern."""

    def __init__(self, sparsity: float, n_m: Sequence[int] | None, include: Sequence[str], exclude: Sequence[str],
                 calibration_batches: int = 8, batch_size: int = 16) -> None:
        self.n_m = tuple(n_m) if n_m else None
        self.sparsity = 1 - self.n_m[0] / self.n_m[1] if self.n_m else sparsity
        self.include, self.exclude = list(include), list(exclude)
        self.calibration, self.batch_size = calibration_batches, batch_size

    def layers(self, model: nn.Module) -> dict[str, nn.Module]:
        """The selected layers, refusing (before any work) widths an N:M pattern cannot tile."""
        layers = select_prunable(model, self.include, self.exclude)
        if self.n_m:
            refuse_ragged(layers, self.n_m)
        return layers

    def pruned_per_row(self, width: int, sparsity: float) -> tuple[int, int | None]:
        """(weights to prune per row or per group, the group size or None) at ``sparsity``."""
        if self.n_m is None:
            return round(sparsity * width), None
        return pruned_per_group(sparsity, self.n_m), self.n_m[1]

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        context = context or CompressionContext()
        layers = self.layers(model)
        if context.calibration_batches is None or context.loss is None:
            raise ValueError("wanda needs calibration batches from the run's training data (a train split) to measure "
                             "input norms; without data use magnitude")
        norms = InputNorms(model, layers)
        training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for batch in context.calibration_batches(self.calibration, self.batch_size):
                    context.loss(model, batch)  # the forward pass feeds the hooks; the loss is not used
        finally:
            norms.remove()
            model.train(training)
        unused = sorted(name for name, count in norms.tokens.items() if not count)
        with torch.no_grad():
            for name, module in layers.items():
                if name not in unused:
                    weight = out_in(module)
                    weight.mul_(wanda_keep(weight, norms.norms(name), *self.pruned_per_row(weight.shape[1], self.sparsity)))
        return model, {"sparsity": round(self.sparsity, 6), "n_m": list(self.n_m) if self.n_m else None,
                       "pruned_layers": len(layers) - len(unused), "unused_layers": unused,
                       "calibration_tokens": max(norms.tokens.values())}

    def gradual(self, model: nn.Module, total_steps: int, start: int, end: int, every: int) -> GradualWanda:
        return GradualWanda(self, model, start, end, every)


class GradualWanda:
    """Sparsity rising from 0 at step ``start`` to the target at ``end`` (Zhu & Gupta's cubic schedule), with input
    norms accumulated from the training forward passes; pruned weights are zeroed again after every step.

    The weights already zero when the stage starts are the initial masks (a resumed stage's checkpoint, or a
    one-shot prune before a recovery fine-tune, where ``start == end == 0`` only keeps them zero); the norms
    start afresh on resume."""

    def __init__(self, pruner: WandaPruning, model: nn.Module, start: int, end: int, every: int) -> None:
        self.pruner, self.start, self.end, self.every = pruner, start, end, every
        self.layers = pruner.layers(model)
        self.masks = {name: out_in(m).detach() != 0 for name, m in self.layers.items()}
        self.norms: InputNorms | None = InputNorms(model, self.layers) if end > 0 else None
        self.sparsity = 0.0

    def target(self, step: int) -> float:
        return cubic_sparsity(self.pruner.sparsity, step, self.start, self.end)

    def after_step(self, model: nn.Module, step: int) -> None:
        if step < self.start:
            return
        with torch.no_grad():
            update = step <= self.end and ((step - self.start) % self.every == 0 or step == self.end)
            if update and self.norms is not None:
                self.sparsity = self.target(step)
                for name, module in self.layers.items():
                    if self.norms.tokens[name]:
                        weight = out_in(module)
                        pruned, group = self.pruner.pruned_per_row(weight.shape[1], self.sparsity)
                        self.masks[name] = wanda_keep(weight, self.norms.norms(name), pruned, group, self.masks[name])
            for name, module in self.layers.items():
                out_in(module).mul_(self.masks[name])
        if step >= self.end and self.norms is not None:
            self.norms.remove()  # the schedule is done: no more hooks in the forward passes
            self.norms = None

    def report(self, model: nn.Module) -> dict[str, Any]:
        return {"target_sparsity": round(self.pruner.sparsity, 6), "n_m": list(self.pruner.n_m) if self.pruner.n_m else None,
                "pruned_layers": len(self.layers), "schedule": {"start": self.start, "end": self.end, "every": self.every}}
