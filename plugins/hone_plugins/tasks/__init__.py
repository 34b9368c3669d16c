"""Built-in tasks: token classification, sequence classification and regression, causal LM, seq2seq."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hone.components import Task
from hone.hookspecs import hookimpl
from hone.registry import Register
from hone_plugins.tasks.generation import GenerationParams, PostprocessParams


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


GENERATION_TAGS = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")


class GenerativeParams(BaseModel):
    """What the generative tasks share: generation settings and the post-processing of texts."""

    model_config = ConfigDict(extra="forbid")
    generation: GenerationParams = Field(
        default_factory=GenerationParams,
        description="How evaluation and `hone predict` generate (greedy by default; predict options override).",
    )
    postprocess: PostprocessParams = Field(
        default_factory=PostprocessParams,
        description="Applied to predictions and references alike before metrics compare them.",
    )


class CausalLMParams(GenerativeParams):
    max_length: int = Field(128, gt=1, description="Block size: most tokens per example (window, prompt kept).")
    stride: int | None = Field(
        None, gt=0, description="`text` records longer than max_length are scored in sliding windows that move by "
        "`stride` tokens: each token counted once, with up to max_length tokens of context. Unset: max_length // 2.",
    )
    completion_only_loss: bool = Field(
        True, description="Loss on the completion (prompt/completion) or the assistant turns (messages) only; "
        "false trains on every token.",
    )
    chat_template: str | None = Field(
        None, description="Jinja chat template for `messages` records, used instead of the tokenizer's (and saved "
        "with it); needed when the tokenizer has none.",
    )
    packing: bool = Field(
        False, description="Pack each batch's examples into rows of up to max_length tokens, each example "
        "attending only to itself (reset positions, 4D block-diagonal mask: eager/sdpa attention).",
    )

    @field_validator("chat_template")
    @classmethod
    def _parses(cls, template: str | None) -> str | None:
        if template is None:
            return None
        try:
            import jinja2
        except ImportError:  # transformers needs jinja2 for chat templates and says so itself
            return template
        try:  # transformers' own environment also knows the {% generation %} tag (assistant token masks)
            jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(GENERATION_TAGS.sub("", template))
        except jinja2.TemplateSyntaxError as error:
            raise ValueError(f"chat_template is not a valid Jinja template (line {error.lineno}): {error}") from None
        return template

    @model_validator(mode="after")
    def _stride(self) -> "CausalLMParams":
        if self.stride is not None and self.stride >= self.max_length:
            raise ValueError(f"stride ({self.stride}) must be below max_length ({self.max_length}) so that every "
                             "window keeps context for its first scored token")
        return self


class Seq2SeqParams(GenerativeParams):
    max_length: int = Field(256, gt=0, description="Most source tokens per example; longer ones are truncated.")
    max_target_length: int = Field(128, gt=0, description="Most target tokens per example; longer ones are truncated.")
    encoder_decoder: bool = Field(
        False, description="Build an EncoderDecoderModel from an encoder checkpoint (BERT: bert2bert, new "
        "cross-attention), with the tokenizer's special tokens as decoder start, EOS and padding.",
    )


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
    """Language modelling and instruction tuning (text, prompt/completion, messages); generates from prompts."""
    from hone_plugins.tasks.causal_lm import CausalLM

    return CausalLM(
        params.max_length, params.stride, params.completion_only_loss, params.chat_template, params.packing,
        params.generation, params.postprocess,
    )


def seq2seq_task(params: Seq2SeqParams) -> Task:
    """Sequence to sequence (T5, BART, bert2bert): source -> target, teacher-forced loss, generation."""
    from hone_plugins.tasks.seq2seq import Seq2Seq

    return Seq2Seq(params.max_length, params.max_target_length, params.encoder_decoder, params.generation,
                   params.postprocess)


@hookimpl
def register_tasks(register: Register) -> None:
    # predictions=: what an evaluation's predictions are, so that a metric that cannot score them is refused up front
    # aliases=: the Hugging Face pipeline names that mean the same task
    register("token-classification", token_classification_task, TokenClassificationParams, predictions="tags",
             default_metrics=("entity-f1",), aliases=("ner",))
    register("sequence-classification", sequence_classification_task, SequenceParams, predictions="labels",
             default_metrics=("accuracy", "f1"), aliases=("text-classification", "sentiment-analysis"))
    register("sequence-regression", sequence_regression_task, SequenceParams, predictions="numbers",
             default_metrics=("mse", "pearson"))
    # causal-lm: instruction records (prompt/completion, messages) generate texts; text records only have a loss
    register("causal-lm", causal_lm_task, CausalLMParams, predictions="texts",
             default_metrics=("perplexity",), aliases=("text-generation",))
    register("seq2seq", seq2seq_task, Seq2SeqParams, predictions="texts", default_metrics=("rouge",),
             aliases=("text2text-generation", "summarization", "translation"))
