"""The ``prune-unseen-embeddings`` compressor: drop the word-embedding rows the training data never uses.

This module imports torch at the top: only the factory in ``__init__.py`` imports it, when a run
builds the compressor, so ``hone plugins`` stays fast.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hone.components import CompressionContext


class RemappedEmbedding(nn.Module):
    """An embedding keeping only some rows: ``index_map`` sends each token id to its row ([UNK]'s if pruned)."""

    def __init__(self, vocab_size: int, rows: int, dim: int, padding_idx: int | None = None,
                 dtype: torch.dtype | None = None, device: torch.device | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = vocab_size, dim, padding_idx
        self.register_buffer("index_map", torch.zeros(vocab_size, dtype=torch.long, device=device))
        self.weight = nn.Parameter(torch.zeros(rows, dim, dtype=dtype, device=device))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(self.index_map[input_ids], self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings} token ids -> {self.weight.shape[0]} rows of {self.embedding_dim}"


class PruneUnseenEmbeddings:
    """Keeps the embedding rows of tokens seen at least ``min_count`` times in training (and special tokens).

    A 30k-piece vocabulary is mostly unused by one domain's data, and the embedding matrix is
    often half of a small model's parameters. The tokenizer is unchanged: only the lookup is, so
    the model gets smaller on disk and in memory; tokens never seen in training read [UNK]'s row.
    """

    def __init__(self, min_count: int = 1) -> None:
        self.min_count = min_count

    def compress(self, model: nn.Module, context: CompressionContext) -> tuple[nn.Module, dict[str, Any]]:
        if not context.train_features:
            raise ValueError("prune-unseen-embeddings needs the training data: use it in a run with a train split")
        unknown = getattr(context.tokenizer, "unk_token_id", None)
        if unknown is None:
            raise ValueError("the tokenizer has no unknown token for the pruned rows to fall back on")
        embedding = model.get_input_embeddings()
        output = model.get_output_embeddings()
        if output is not None and output.weight is embedding.weight:
            raise ValueError("the input embeddings are tied to the output layer: pruning rows would change what it predicts")
        counts = Counter(token for feature in context.train_features for token in feature["input_ids"])
        seen = {token for token, count in counts.items() if count >= self.min_count}
        kept = sorted(seen | set(context.tokenizer.all_special_ids) | {unknown})
        vocab_size, dim = embedding.weight.shape
        index_map = torch.full((vocab_size,), kept.index(unknown), dtype=torch.long)
        index_map[kept] = torch.arange(len(kept))
        padding = int(index_map[embedding.padding_idx]) if embedding.padding_idx is not None else None
        new = RemappedEmbedding(vocab_size, len(kept), dim, padding, embedding.weight.dtype, embedding.weight.device)
        with torch.no_grad():
            new.index_map.copy_(index_map)
            new.weight.copy_(embedding.weight[kept])
        model.set_input_embeddings(new)
        report = {"vocabulary": vocab_size, "rows_kept": len(kept), "rows_removed": vocab_size - len(kept),
                  "min_count": self.min_count}
        # hone saves the new weights and index map; the recipe says how to rebuild the module they fit
        return model, {**report, "recipe": {"rows": len(kept), "padding_idx": padding}}

    def restore(self, model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
        """The same structure on a freshly built model; hone then loads the saved rows and index map."""
        embedding = model.get_input_embeddings()
        vocab_size, dim = embedding.weight.shape
        model.set_input_embeddings(RemappedEmbedding(vocab_size, recipe["rows"], dim, recipe["padding_idx"],
                                                     embedding.weight.dtype, embedding.weight.device))
        return model
