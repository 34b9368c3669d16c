"""An example hone plugin: the ``example-token-f1`` metric and the ``prune-small`` and
``prune-unseen-embeddings`` compressors.

This module is what the ``hone.plugins`` entry point names, so ``hone plugins`` imports it:
it holds only the params models and the hooks, and the factories import the heavy parts
(torch, in :mod:`hone_example_plugin.compressors`) when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hone.hookspecs import hookimpl
from hone.registry import Register

if TYPE_CHECKING:
    from hone_example_plugin.compressors import PruneSmall
    from hone_example_plugin.embeddings import PruneUnseenEmbeddings
    from hone_example_plugin.metrics import TokenF1

__version__ = "0.1.0"


class TokenF1Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outside: str = Field("O", description="The tag of tokens outside any entity; they are not counted.")
    ignore_prefix: bool = Field(False, description="Compare entity types only: B-PER and I-PER count as the same tag.")


class PruneSmallParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float | None = Field(None, ge=0, description="Zero every Linear weight whose absolute value is below this.")
    fraction: float | None = Field(
        None, ge=0, le=1, description="Zero this fraction of all Linear weights, smallest absolute values first."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> PruneSmallParams:
        if (self.threshold is None) == (self.fraction is None):
            raise ValueError("give exactly one of `threshold` or `fraction`")
        return self


class PruneUnseenEmbeddingsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_count: int = Field(1, ge=1, description="Keep the rows of tokens seen at least this often in the training data.")


def token_f1(params: TokenF1Params) -> TokenF1:
    """Token-level precision/recall/F1 over entity tags (tokens tagged O are not counted)."""
    from hone_example_plugin.metrics import TokenF1

    return TokenF1(outside=params.outside, ignore_prefix=params.ignore_prefix)


def prune_small(params: PruneSmallParams) -> PruneSmall:
    """Magnitude pruning: zero the Linear weights below a threshold, or the smallest fraction."""
    from hone_example_plugin.compressors import PruneSmall

    return PruneSmall(threshold=params.threshold, fraction=params.fraction)


def prune_unseen_embeddings(params: PruneUnseenEmbeddingsParams) -> PruneUnseenEmbeddings:
    """Drop the word-embedding rows of tokens the training data never uses (they read [UNK]'s row)."""
    from hone_example_plugin.embeddings import PruneUnseenEmbeddings

    return PruneUnseenEmbeddings(min_count=params.min_count)


@hookimpl
def register_metrics(register: Register) -> None:
    # "token-f1" would be a generic name: prefix it with the project's so no other plugin takes it.
    # results= declares each scalar result and which way it improves.
    register("example-token-f1", token_f1, TokenF1Params,
             results={"token_precision": "max", "token_recall": "max", "token_f1": "max"})


@hookimpl
def register_compressors(register: Register) -> None:
    register("prune-small", prune_small, PruneSmallParams)
    register("prune-unseen-embeddings", prune_unseen_embeddings, PruneUnseenEmbeddingsParams)
