"""Built-in tasks: token classification, sequence classification and regression, causal LM."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.components import Task
from hone.hookspecs import hookimpl
from hone.registry import Register


class TokenClassificationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_length: int = Field(128, gt=0, description="Maximum sub-tokens per sentence; longer ones are truncated.")
    label_all_tokens: bool = Field(
        False, description="Label every sub-token (B- becomes I- on continuations), not only a word's first."
    )
    decoding: Literal["viterbi", "argmax"] = Field(
        "viterbi",
        description="viterbi: the most probable tag sequence in which every I-X follows a B-X or I-X (IOB2); "
        "argmax: each word's most probable tag on its own.",
    )


class SequenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_length: int = Field(128, gt=0, description="Maximum tokens per text (or text pair); longer ones are truncated.")


class CausalLMParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_length: int = Field(128, gt=0, description="Block size: maximum tokens per text, and per prompt kept.")


# factories carry a suffix: a submodule import would overwrite a package attribute of its own name
def token_classification_task(params: TokenClassificationParams) -> Task:
    """Tag each word (NER, POS): BIO tags per word, entity spans with character offsets."""
    from hone_plugins.tasks.token_classification import TokenClassification

    return TokenClassification(params.max_length, params.label_all_tokens, params.decoding)


def sequence_classification_task(params: SequenceParams) -> Task:
    """Classify a text or text pair into one of the labels (sentiment, NLI, topics)."""
    from hone_plugins.tasks.sequence_classification import SequenceClassification

    return SequenceClassification(params.max_length)


def sequence_regression_task(params: SequenceParams) -> Task:
    """Predict one number from a text or text pair (similarity, rating), trained with MSE."""
    from hone_plugins.tasks.sequence_classification import SequenceRegression

    return SequenceRegression(params.max_length)


def causal_lm_task(params: CausalLMParams) -> Task:
    """Language modelling: next-token loss and perplexity; predicts by generating from prompts."""
    from hone_plugins.tasks.causal_lm import CausalLM

    return CausalLM(params.max_length)


@hookimpl
def register_tasks(register: Register) -> None:
    # predictions=: what an evaluation's predictions are, so that a metric that cannot score them is refused up front
    register("token-classification", token_classification_task, TokenClassificationParams, predictions="tags",
             default_metrics=("entity-f1",))
    register("sequence-classification", sequence_classification_task, SequenceParams, predictions="labels",
             default_metrics=("accuracy", "f1"))
    register("sequence-regression", sequence_regression_task, SequenceParams, predictions="numbers",
             default_metrics=("mse", "pearson"))
    register("causal-lm", causal_lm_task, CausalLMParams, predictions="nothing",  # only the loss: perplexity
             default_metrics=("perplexity",))
