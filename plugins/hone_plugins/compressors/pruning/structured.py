"""Structured pruning: attention heads and feed-forward neurons removed, so the Linear layers really shrink."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hone.components import CompressionContext


def encoder_layers(model: nn.Module) -> dict[str, nn.Module]:
    """BERT-style encoder layers: ``attention.self.{query,key,value}``, ``attention.output.dense``,
    ``intermediate.dense`` and ``output.dense`` (BERT, RoBERTa, ELECTRA, MiniLM...)."""
    layers = {}
    for name, module in model.named_modules():
        attention = getattr(getattr(module, "attention", None), "self", None)
        if (attention is not None and all(isinstance(getattr(attention, k, None), nn.Linear) for k in ("query", "key", "value"))
                and hasattr(attention, "attention_head_size") and isinstance(getattr(module.intermediate, "dense", None), nn.Linear)):
            layers[name] = module
    if not layers:
        raise ValueError(f"structured pruning needs a BERT-style encoder (BERT, RoBERTa, ELECTRA, MiniLM...); "
                         f"{type(model).__name__} has none")
    return layers


def _rows(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    """A smaller Linear keeping output features ``index``."""
    new = nn.Linear(linear.in_features, len(index), bias=linear.bias is not None, device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[index])
        if linear.bias is not None:
            new.bias.copy_(linear.bias[index])
    return new


def _columns(linear: nn.Linear, index: torch.Tensor) -> nn.Linear:
    """A smaller Linear keeping input features ``index``."""
    new = nn.Linear(len(index), linear.out_features, bias=linear.bias is not None, device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, index])
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new


def keep_heads(layer: nn.Module, heads: list[int]) -> None:
    attention, size = layer.attention.self, layer.attention.self.attention_head_size
    index = torch.tensor([h * size + i for h in heads for i in range(size)], dtype=torch.long)
    for key in ("query", "key", "value"):
        setattr(attention, key, _rows(getattr(attention, key), index))
    layer.attention.output.dense = _columns(layer.attention.output.dense, index)
    attention.num_attention_heads, attention.all_head_size = len(heads), len(heads) * size


def keep_neurons(layer: nn.Module, neurons: list[int]) -> None:
    index = torch.tensor(neurons, dtype=torch.long)
    layer.intermediate.dense = _rows(layer.intermediate.dense, index)
    layer.output.dense = _columns(layer.output.dense, index)


def _column_groups(scores: torch.Tensor, group: int) -> torch.Tensor:
    return scores.view(-1, group).sum(-1)


class StructuredPruning:
    """Removes the least important attention heads and feed-forward neurons of every encoder layer."""

    def __init__(self, heads_fraction: float, ffn_fraction: float, importance: str, scope: str,
                 calibration_batches: int, batch_size: int) -> None:
        self.heads_fraction, self.ffn_fraction, self.importance, self.scope = heads_fraction, ffn_fraction, importance, scope
        self.calibration, self.batch_size = calibration_batches, batch_size

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        layers = encoder_layers(model)
        context = context or CompressionContext()
        use_gradient = self.importance == "gradient" or (self.importance == "auto" and context.calibration_batches is not None)
        if use_gradient and (context.calibration_batches is None or context.loss is None):
            raise ValueError("importance 'gradient' needs calibration data (a train split); use importance: magnitude")
        head_scores, ffn_scores = self._gradient_scores(model, layers, context) if use_gradient else self._magnitude_scores(layers)
        heads = self._choose(head_scores, self.heads_fraction)
        neurons = self._choose(ffn_scores, self.ffn_fraction)
        report: dict[str, Any] = {"importance": "gradient" if use_gradient else "magnitude", "scope": self.scope,
                                  "heads_removed": {}, "ffn_sizes": {}}
        recipe: dict[str, Any] = {"layers": {}}
        for name, layer in layers.items():
            before_heads, before_ffn = layer.attention.self.num_attention_heads, layer.intermediate.dense.out_features
            keep_heads(layer, heads[name])
            keep_neurons(layer, neurons[name])
            report["heads_removed"][name] = sorted(set(range(before_heads)) - set(heads[name]))
            report["ffn_sizes"][name] = [before_ffn, len(neurons[name])]
            recipe["layers"][name] = {"heads": len(heads[name]), "ffn": len(neurons[name])}
        report["heads"] = [sum(len(v) + len(report["heads_removed"][k]) for k, v in heads.items()), sum(map(len, heads.values()))]
        report["recipe"] = recipe
        return model, report

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        layers = encoder_layers(model)
        for name, sizes in recipe["layers"].items():
            keep_heads(layers[name], list(range(sizes["heads"])))  # shapes only: the saved weights load next
            keep_neurons(layers[name], list(range(sizes["ffn"])))
        return model

    def _choose(self, scores: dict[str, torch.Tensor], fraction: float) -> dict[str, list[int]]:
        """Indices to keep per layer: drop the ``fraction`` least important (per layer, or ranked over all layers)."""
        if self.scope == "layer":
            return {name: _top(s, len(s) - min(len(s) - 1, round(fraction * len(s)))) for name, s in scores.items()}
        normalised = {name: s / s.sum().clamp_min(1e-12) for name, s in scores.items()}  # layers have different scales
        ranked = sorted((float(v), name, i) for name, s in normalised.items() for i, v in enumerate(s))
        keep = {name: set(range(len(s))) for name, s in scores.items()}
        cut = round(fraction * len(ranked))
        for _, name, i in ranked:
            if cut == 0:
                break
            if len(keep[name]) > 1:  # never a whole layer
                keep[name].discard(i)
                cut -= 1
        return {name: sorted(kept) for name, kept in keep.items()}

    def _magnitude_scores(self, layers: dict[str, nn.Module]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        heads, ffn = {}, {}
        for name, layer in layers.items():
            attention, size = layer.attention.self, layer.attention.self.attention_head_size
            rows = sum(getattr(attention, k).weight.detach().float().pow(2).sum(1) for k in ("query", "key", "value"))
            columns = layer.attention.output.dense.weight.detach().float().pow(2).sum(0)
            heads[name] = _column_groups(rows + columns, size).sqrt()
            ffn[name] = (layer.intermediate.dense.weight.detach().float().pow(2).sum(1)
                         + layer.output.dense.weight.detach().float().pow(2).sum(0)).sqrt()
        return heads, ffn

    def _gradient_scores(self, model: nn.Module, layers: dict[str, nn.Module],
                         context: CompressionContext) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """|dL/d(gate)| of each head and neuron (Michel et al. 2019), summed over calibration batches.

        A gate scaling a head's (or neuron's) output contributes sum(W * dL/dW) over its columns of the
        following projection, so no gates need to be inserted into the model."""
        attention_out = {name: layer.attention.output.dense.weight for name, layer in layers.items()}
        ffn_out = {name: layer.output.dense.weight for name, layer in layers.items()}
        weights = [*attention_out.values(), *ffn_out.values()]
        flags = [w.requires_grad for w in weights]
        heads = {name: torch.zeros(layer.attention.self.num_attention_heads) for name, layer in layers.items()}
        ffn = {name: torch.zeros(layer.intermediate.dense.out_features) for name, layer in layers.items()}
        training = model.training
        model.eval()
        try:
            for weight in weights:
                weight.requires_grad_(True)
            assert context.calibration_batches is not None and context.loss is not None
            for batch in context.calibration_batches(self.calibration, self.batch_size):
                grads = torch.autograd.grad(context.loss(model, batch), weights)
                for name, weight, grad in zip(attention_out, attention_out.values(), grads[: len(layers)]):
                    per_column = (weight.detach().float() * grad.float()).sum(0).cpu()
                    heads[name] += _column_groups(per_column, layers[name].attention.self.attention_head_size).abs()
                for name, weight, grad in zip(ffn_out, ffn_out.values(), grads[len(layers):]):
                    ffn[name] += (weight.detach().float() * grad.float()).sum(0).abs().cpu()
        finally:
            for weight, flag in zip(weights, flags):
                weight.requires_grad_(flag)
            model.train(training)
        return heads, ffn


def _top(scores: torch.Tensor, count: int) -> list[int]:
    return sorted(torch.topk(scores, count).indices.tolist())
