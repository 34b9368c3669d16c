"""The ``prune-small`` compressor: unstructured magnitude pruning of Linear weights."""

from __future__ import annotations

from typing import Any


class PruneSmall:
    """Zero every ``torch.nn.Linear`` weight below ``threshold`` (absolute value), or the
    ``fraction`` of all Linear weights with the smallest absolute values (one global ranking).

    Biases, embeddings and norms are left alone; shapes never change, so the pruned model
    saves and loads like the original.
    """

    def __init__(self, *, threshold: float | None = None, fraction: float | None = None) -> None:
        if (threshold is None) == (fraction is None):
            raise ValueError("give exactly one of `threshold` or `fraction`")
        self.threshold, self.fraction = threshold, fraction

    def compress(self, model: Any, context: Any = None) -> tuple[Any, dict[str, Any]]:
        import torch

        layers = {name: module.weight for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
        with torch.no_grad():
            for weight, keep in zip(layers.values(), self._masks(list(layers.values()))):
                weight.mul_(keep.to(weight.dtype))
        parameters = sum(weight.numel() for weight in layers.values())
        nonzero = sum(int(torch.count_nonzero(weight)) for weight in layers.values())
        report = {
            "parameters": parameters,
            "nonzero": nonzero,
            "sparsity": 1.0 - nonzero / parameters if parameters else 0.0,
            "layers": {name: 1.0 - int(torch.count_nonzero(w)) / w.numel() for name, w in layers.items()},
            "rule": {"threshold": self.threshold} if self.threshold is not None else {"fraction": self.fraction},
        }
        return model, report

    def _masks(self, weights: list[Any]) -> list[Any]:
        import torch

        if self.threshold is not None:
            return [weight.abs() >= self.threshold for weight in weights]
        if not weights:
            return []
        magnitudes = torch.cat([weight.detach().abs().flatten().float() for weight in weights])
        keep = torch.ones_like(magnitudes, dtype=torch.bool)
        count = round(float(self.fraction or 0.0) * magnitudes.numel())
        if count:
            # topk, not a cut-off value: ties at the boundary must not prune more than asked
            keep[torch.topk(magnitudes, count, largest=False).indices] = False
        return [mask.view_as(weight) for mask, weight in zip(keep.split([w.numel() for w in weights]), weights)]
