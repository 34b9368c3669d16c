"""How important each attention head, key/value group and feed-forward neuron of a layer is: weight norms, or
|dLoss/dgate| on calibration batches (Michel et al. 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hone.components import CompressionContext
from hone_plugins.compressors.layers import is_conv1d, out_in
from hone_plugins.compressors.pruning.blocks import Block


@dataclass
class Scores:
    """Importance of a layer's key/value groups (each with its query heads), its query heads alone, and its neurons."""

    groups: torch.Tensor
    heads: torch.Tensor
    ffn: torch.Tensor


def _squares(weights: list[torch.Tensor], dim: int) -> torch.Tensor:
    return sum(w.detach().float().pow(2).sum(dim) for w in weights)  # type: ignore[return-value]


def magnitude_scores(blocks: dict[str, Block]) -> dict[str, Scores]:
    """L2 norms of the weights each unit owns: its rows of the query (key, value) and FFN-in projections, its
    columns of the output projections."""
    scores = {}
    for name, block in blocks.items():
        queries, kvs = block.query_kv()
        heads = (_squares(queries, 1) + _squares([out_in(block.out_module)], 0)).view(block.heads, -1).sum(1)
        kv = _squares(kvs, 1).view(block.kv_heads, -1).sum(1)
        ffn = _squares(block.ffn_in(), 1) + _squares([out_in(block.ffn_out_module)], 0)
        groups = heads.view(block.kv_heads, -1).sum(1) + kv
        scores[name] = Scores(groups.sqrt(), heads.sqrt(), ffn.sqrt())
    return scores


def gradient_scores(model: nn.Module, blocks: dict[str, Block], context: CompressionContext,
                    batches: int, batch_size: int) -> dict[str, Scores]:
    """|dL/d(gate)| of each group, head and neuron, summed over calibration batches.

    A gate scaling a head's (or neuron's) output contributes sum(W * dL/dW) over its columns of the following
    projection, so no gates need to be inserted into the model; a group's gate is the sum of its heads'."""
    outs = [block.out_module for block in blocks.values()]
    ffn_outs = [block.ffn_out_module for block in blocks.values()]
    weights = [m.weight for m in outs + ffn_outs]
    flags = [w.requires_grad for w in weights]
    scores = {name: Scores(torch.zeros(b.kv_heads), torch.zeros(b.heads), torch.zeros(b.ffn)) for name, b in blocks.items()}
    training = model.training
    model.eval()
    try:
        for weight in weights:
            weight.requires_grad_(True)
        assert context.calibration_batches is not None and context.loss is not None
        for batch in context.calibration_batches(batches, batch_size):
            grads = torch.autograd.grad(context.loss(model, batch), weights)
            per_column = [(out_in(m).detach().float() * (g.t() if is_conv1d(m) else g).float()).sum(0).cpu()
                          for m, g in zip(outs + ffn_outs, grads)]
            for (name, block), heads, ffn in zip(blocks.items(), per_column[: len(blocks)], per_column[len(blocks):]):
                per_head = heads.view(block.heads, -1).sum(1)
                scores[name].heads += per_head.abs()
                scores[name].groups += per_head.view(block.kv_heads, -1).sum(1).abs()
                scores[name].ffn += ffn.abs()
    finally:
        for weight, flag in zip(weights, flags):
            weight.requires_grad_(flag)
        model.train(training)
    return scores
