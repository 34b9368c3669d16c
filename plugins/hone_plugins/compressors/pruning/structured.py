"""Structured pruning: attention heads and feed-forward neurons removed, so the layers really shrink. BERT-style
encoders, GPT-2 and Llama-style decoders; with grouped-query attention, whole key/value groups go with their
query heads, or the same number of query heads leaves every group."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hone.components import CompressionContext
from hone_plugins.compressors.pruning.blocks import Block, find_blocks
from hone_plugins.compressors.pruning.importance import Scores, gradient_scores, magnitude_scores


def slot_scores(heads: torch.Tensor, groups: int) -> torch.Tensor:
    """Importance of removing one more query head from every group: the sum over groups of each group's
    s-th least important head (so removing ``r`` slots removes each group's ``r`` weakest heads)."""
    return heads.view(groups, -1).sort(dim=1).values.sum(0)


class StructuredPruning:
    """Removes the least important attention heads and feed-forward neurons of every layer."""

    def __init__(self, heads_fraction: float, ffn_fraction: float, importance: str, scope: str,
                 calibration_batches: int, batch_size: int, gqa: str = "groups") -> None:
        self.heads_fraction, self.ffn_fraction, self.importance, self.scope = heads_fraction, ffn_fraction, importance, scope
        self.calibration, self.batch_size, self.gqa = calibration_batches, batch_size, gqa

    def compress(self, model: nn.Module, context: CompressionContext | None = None) -> tuple[nn.Module, dict[str, Any]]:
        blocks = find_blocks(model)
        context = context or CompressionContext()
        use_gradient = self.importance == "gradient" or (self.importance == "auto" and context.calibration_batches is not None)
        if use_gradient and (context.calibration_batches is None or context.loss is None):
            raise ValueError("importance 'gradient' needs calibration data (a train split); use importance: magnitude")
        scores = (gradient_scores(model, blocks, context, self.calibration, self.batch_size) if use_gradient
                  else magnitude_scores(blocks))
        kept = self._heads(blocks, scores)
        neurons = self._choose({name: s.ffn for name, s in scores.items()}, self.ffn_fraction)
        kind = next(iter(blocks.values())).kind
        report: dict[str, Any] = {"importance": "gradient" if use_gradient else "magnitude", "scope": self.scope,
                                  "heads_removed": {}, "ffn_sizes": {}}
        before_heads = sum(b.heads for b in blocks.values())
        before_kv = sum(b.kv_heads for b in blocks.values())
        recipe: dict[str, Any] = {"layers": {}}
        for name, block in blocks.items():
            heads, kv_heads = kept[name]
            report["heads_removed"][name] = sorted(set(range(block.heads)) - set(heads))
            report["ffn_sizes"][name] = [block.ffn, len(neurons[name])]
            block.keep(heads, kv_heads, neurons[name])
            recipe["layers"][name] = {"heads": len(heads), "ffn": len(neurons[name])}
            if kind != "bert":
                recipe["layers"][name]["kv_heads"] = len(kv_heads)
        report["heads"] = [before_heads, sum(b.heads for b in blocks.values())]
        if kind != "bert":
            report.update(architecture=kind, gqa=self.gqa, kv_heads=[before_kv, sum(b.kv_heads for b in blocks.values())])
        report["recipe"] = recipe
        return model, report

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        blocks = find_blocks(model)
        for name, sizes in recipe["layers"].items():  # shapes only: the saved weights load next
            block = blocks[name]
            kv = sizes.get("kv_heads", sizes["heads"])  # BERT recipes: multi-head attention, a group per head
            per_group, original = sizes["heads"] // kv, block.heads // block.kv_heads
            block.keep([g * original + i for g in range(kv) for i in range(per_group)], list(range(kv)),
                       list(range(sizes["ffn"])))
        return model

    def _heads(self, blocks: dict[str, Block], scores: dict[str, Scores]) -> dict[str, tuple[list[int], list[int]]]:
        """The (query heads, key/value heads) each layer keeps."""
        by_queries = self.gqa == "queries" and any(b.heads > b.kv_heads for b in blocks.values())
        if not by_queries:  # whole groups (a group is one head in multi-head attention)
            groups = self._choose({name: s.groups for name, s in scores.items()}, self.heads_fraction)
            return {name: ([g * (b.heads // b.kv_heads) + i for g in groups[name] for i in range(b.heads // b.kv_heads)],
                           groups[name]) for name, b in blocks.items()}
        slots = self._choose({name: slot_scores(s.heads, blocks[name].kv_heads) for name, s in scores.items()},
                             self.heads_fraction)
        kept = {}
        for name, block in blocks.items():
            per_group, heads = len(slots[name]), scores[name].heads.view(block.kv_heads, -1)
            strongest = heads.topk(per_group, dim=1).indices.sort(dim=1).values
            kept[name] = (sorted(int(g * heads.shape[1] + i) for g, row in enumerate(strongest) for i in row),
                          list(range(block.kv_heads)))
        return kept

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


def _top(scores: torch.Tensor, count: int) -> list[int]:
    return sorted(torch.topk(scores, count).indices.tolist())
