"""The transformer layers structured pruning can shrink, seen one way for every architecture: query heads and
their key/value heads (grouped-query attention), the attention output projection, and the feed-forward
neurons. BERT-style encoders, GPT-2 (``Conv1D``) and Llama-style decoders (Llama, Mistral, Qwen2...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hone_plugins.compressors.layers import is_conv1d, out_in, shrink

SUPPORTED = ("structured pruning needs a BERT-style encoder (BERT, RoBERTa, ELECTRA, MiniLM...), GPT-2 blocks "
             "(attn.c_attn/c_proj, mlp.c_fc/c_proj) or Llama-style decoder layers (self_attn.q/k/v/o_proj, "
             "mlp.gate/up/down_proj: Llama, Mistral, Qwen2...)")


@dataclass
class Block:
    """One layer's prunable parts. ``query``/``kv`` weights have a row per head dimension, ``out`` a column per
    query-head dimension; ``ffn_in`` have a row per neuron, ``ffn_out`` a column per neuron (all as (out, in))."""

    kind: str
    layer: nn.Module
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def attention(self) -> nn.Module:
        return {"bert": lambda: self.layer.attention.self, "gpt2": lambda: self.layer.attn,
                "llama": lambda: self.layer.self_attn}[self.kind]()

    @property
    def ffn(self) -> int:
        return self.ffn_out_module.weight.shape[0 if is_conv1d(self.ffn_out_module) else 1]

    @property
    def out_module(self) -> nn.Module:
        return {"bert": lambda: self.layer.attention.output.dense, "gpt2": lambda: self.layer.attn.c_proj,
                "llama": lambda: self.layer.self_attn.o_proj}[self.kind]()

    @property
    def ffn_out_module(self) -> nn.Module:
        return {"bert": lambda: self.layer.output.dense, "gpt2": lambda: self.layer.mlp.c_proj,
                "llama": lambda: self.layer.mlp.down_proj}[self.kind]()

    def query_kv(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(weights with a row per query-head dimension, weights with a row per key/value-head dimension)."""
        if self.kind == "bert":
            a = self.attention
            return [a.query.weight], [a.key.weight, a.value.weight]
        if self.kind == "llama":
            a = self.attention
            return [a.q_proj.weight], [a.k_proj.weight, a.v_proj.weight]
        q, k, v = out_in(self.layer.attn.c_attn).split(self.heads * self.head_dim, dim=0)
        return [q], [k, v]

    def ffn_in(self) -> list[torch.Tensor]:
        if self.kind == "bert":
            return [self.layer.intermediate.dense.weight]
        if self.kind == "gpt2":
            return [out_in(self.layer.mlp.c_fc)]
        return [self.layer.mlp.gate_proj.weight, self.layer.mlp.up_proj.weight]

    def keep(self, heads: list[int], kv_heads: list[int], neurons: list[int]) -> None:
        """Shrink the layer to query heads ``heads``, key/value heads ``kv_heads`` and FFN neurons ``neurons``
        (original indices, sorted; every kept key/value head keeps the same number of query heads)."""
        q, kv = _dims(heads, self.head_dim), _dims(kv_heads, self.head_dim)
        index = torch.tensor(neurons, dtype=torch.long)
        a = self.attention
        if self.kind == "bert":
            for key in ("query", "key", "value"):
                setattr(a, key, shrink(getattr(a, key), out_index=q))
            self.layer.attention.output.dense = shrink(self.out_module, in_index=q)
            a.num_attention_heads, a.all_head_size = len(heads), len(heads) * self.head_dim
            self.layer.intermediate.dense = shrink(self.layer.intermediate.dense, out_index=index)
            self.layer.output.dense = shrink(self.layer.output.dense, in_index=index)
        elif self.kind == "gpt2":
            width = self.heads * self.head_dim
            a.c_attn = shrink(a.c_attn, out_index=torch.cat([q, width + kv, 2 * width + kv]))
            a.c_proj = shrink(a.c_proj, in_index=q)
            a.num_heads, a.split_size = len(heads), len(heads) * self.head_dim
            self.layer.mlp.c_fc = shrink(self.layer.mlp.c_fc, out_index=index)
            self.layer.mlp.c_proj = shrink(self.layer.mlp.c_proj, in_index=index)
        else:
            a.q_proj, a.o_proj = shrink(a.q_proj, out_index=q), shrink(a.o_proj, in_index=q)
            a.k_proj, a.v_proj = shrink(a.k_proj, out_index=kv), shrink(a.v_proj, out_index=kv)
            a.num_key_value_groups = len(heads) // len(kv_heads)
            mlp = self.layer.mlp
            mlp.gate_proj, mlp.up_proj = shrink(mlp.gate_proj, out_index=index), shrink(mlp.up_proj, out_index=index)
            mlp.down_proj = shrink(mlp.down_proj, in_index=index)
        self.heads, self.kv_heads = len(heads), len(kv_heads)


def _dims(heads: list[int], head_dim: int) -> torch.Tensor:
    return torch.tensor([h * head_dim + i for h in heads for i in range(head_dim)], dtype=torch.long)


def _has_linear(module: Any, *names: str) -> bool:
    return module is not None and all(isinstance(getattr(module, n, None), nn.Linear) for n in names)


def _block(layer: nn.Module) -> Block | None:
    """The layer as a :class:`Block`, or None if it is no layer of a supported architecture."""
    attention = getattr(getattr(layer, "attention", None), "self", None)
    if (_has_linear(attention, "query", "key", "value") and hasattr(attention, "attention_head_size")
            and _has_linear(getattr(layer, "intermediate", None), "dense")):
        heads = attention.num_attention_heads
        return Block("bert", layer, heads, heads, attention.attention_head_size)
    attention, mlp = getattr(layer, "attn", None), getattr(layer, "mlp", None)
    if (attention is not None and mlp is not None and all(is_conv1d(getattr(attention, n, None)) for n in ("c_attn", "c_proj"))
            and all(is_conv1d(getattr(mlp, n, None)) for n in ("c_fc", "c_proj")) and hasattr(attention, "split_size")):
        return Block("gpt2", layer, attention.num_heads, attention.num_heads, attention.head_dim)
    attention = getattr(layer, "self_attn", None)
    if (_has_linear(attention, "q_proj", "k_proj", "v_proj", "o_proj") and hasattr(attention, "num_key_value_groups")
            and _has_linear(mlp, "gate_proj", "up_proj", "down_proj")):
        head_dim = attention.head_dim
        return Block("llama", layer, attention.q_proj.out_features // head_dim, attention.k_proj.out_features // head_dim,
                     head_dim)
    return None


def find_blocks(model: nn.Module) -> dict[str, Block]:
    """Every prunable layer of the model, by module name (refusing a model with none)."""
    blocks = {name: block for name, module in model.named_modules() if (block := _block(module)) is not None}
    if not blocks:
        raise ValueError(f"{SUPPORTED}; {type(model).__name__} has none")
    kinds = {block.kind for block in blocks.values()}
    if len(kinds) > 1:
        raise ValueError(f"structured pruning found layers of several kinds ({', '.join(sorted(kinds))}); prune one model at a time")
    return blocks
